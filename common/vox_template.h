/*
 * vox_template: Mustache rendering (kainjow's mustache.hpp, Debian
 * libkainjow-mustache-dev, behind this C shim) with a jansson object as
 * the data: objects are sections/contexts, arrays are lists, strings,
 * integers, reals, booleans and null as Mustache expects.
 *
 * html: true escapes what {{name}} inserts (& < > " ' as entities; {{{name}}}
 * does not); false inserts text as it is (subjects, text bodies, SMS).
 * Numbers print as their JSON text (reals in the shortest form that reads
 * back the same: 1.5, 2, 1e+20); null is false ({{x}} prints nothing).
 * Do not write partials ({{> name}}): the library would take a string of
 * the data called name as a template.
 */
#ifndef VOX_TEMPLATE_H
#define VOX_TEMPLATE_H

#ifdef __cplusplus
/* vox_error.h has no C++ guards of its own, hence the include inside. */
extern "C" {
#endif

#include <jansson.h>
#include <stdbool.h>

#include "vox_error.h"

/* The rendered text (caller frees with free()), or NULL with err:
 * VOX_ERR_INVALID for a template that does not parse (message with the
 * library's reason), VOX_ERR_NOMEM. Output over max_len bytes (0: 1 MiB)
 * is VOX_ERR_INVALID too. */
char *vox_template_render(const char *tmpl, const json_t *data, bool html,
                          size_t max_len, vox_error_t *err);

/* Whether tmpl parses; err says why not. */
bool vox_template_check(const char *tmpl, vox_error_t *err);

#ifdef __cplusplus
}
#endif

#endif

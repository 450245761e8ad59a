/*
 * Tests of vox_template: variables with and without HTML escaping,
 * sections over objects, lists and booleans, inverted sections (false,
 * null, missing, empty list), how numbers print, UTF-8, templates that do
 * not parse, data that is not an object or too deep, and max_len.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "vox_template.h"

static json_t *data_of(const char *text)
{
	json_error_t jerr;
	json_t *data = json_loads(text, 0, &jerr);

	cr_assert_not_null(data, "%s: %s", text, jerr.text);
	return data;
}

/* tmpl rendered with data (JSON text) is want. */
static void renders(const char *tmpl, const char *data_text, bool html,
                    const char *want)
{
	json_t *data = data_of(data_text);
	vox_error_t err = {0};
	char *out = vox_template_render(tmpl, data, html, 0, &err);

	cr_assert_not_null(out, "%s: %s", tmpl, err.message);
	cr_assert_str_eq(out, want, "%s", tmpl);
	free(out);
	json_decref(data);
}

Test(template, variables_and_escaping)
{
	const char *data = "{\"name\":\"<b>Tom & \\\"Jerry\\\"</b>'s\"}";

	renders("Hi {{name}}!", data, true,
	        "Hi &lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;&apos;s!");
	renders("Hi {{{name}}}!", data, true, "Hi <b>Tom & \"Jerry\"</b>'s!");
	renders("Hi {{& name}}!", data, true, "Hi <b>Tom & \"Jerry\"</b>'s!");
	/* text: nothing escaped, whichever tag */
	renders("Hi {{name}}!", data, false, "Hi <b>Tom & \"Jerry\"</b>'s!");
	renders("Hi {{{name}}}!", data, false, "Hi <b>Tom & \"Jerry\"</b>'s!");
	renders("{{missing}}|{{ name }}", "{\"name\":\"x\"}", true, "|x");
	renders("{{! a comment }}ok", "{}", true, "ok");
	renders("{{=<% %>=}}<% name %>", "{\"name\":\"y\"}", false, "y");
}

Test(template, sections)
{
	const char *data = "{\"number\":{\"e164\":\"+14155550123\","
	                   "\"city\":\"San Francisco\"},"
	                   "\"usage\":{\"minutes\":42}}";

	renders("{{#number}}{{e164}} in {{city}}{{/number}}", data, false,
	        "+14155550123 in San Francisco");
	renders("{{number.e164}}/{{usage.minutes}}", data, false,
	        "+14155550123/42");
	/* an outer name is seen from inside */
	renders("{{#number}}{{usage.minutes}}{{/number}}", data, false, "42");
	renders("{{#flag}}on{{/flag}}{{^flag}}off{{/flag}}", "{\"flag\":true}",
	        false, "on");
	renders("{{#flag}}on{{/flag}}{{^flag}}off{{/flag}}", "{\"flag\":false}",
	        false, "off");
	renders("[{{flag}}]", "{\"flag\":true}", false, "[]");
}

Test(template, inverted_sections)
{
	const char *tmpl = "{{^x}}none{{/x}}";

	renders(tmpl, "{\"x\":null}", false, "none");
	renders(tmpl, "{}", false, "none");
	renders(tmpl, "{\"x\":[]}", false, "none");
	renders(tmpl, "{\"x\":false}", false, "none");
	renders(tmpl, "{\"x\":[1]}", false, "");
	renders(tmpl, "{\"x\":\"s\"}", false, "");
	renders("[{{x}}]", "{\"x\":null}", true, "[]");
}

Test(template, lists)
{
	renders("{{#numbers}}{{e164}};{{/numbers}}",
	        "{\"numbers\":[{\"e164\":\"+1\"},{\"e164\":\"+2\"},"
	        "{\"e164\":\"+3\"}]}",
	        false, "+1;+2;+3;");
	renders("{{#tags}}<{{.}}>{{/tags}}", "{\"tags\":[\"a&b\",\"c\"]}", true,
	        "<a&amp;b><c>");
	renders("{{#m}}{{#.}}{{.}}{{/.}},{{/m}}", "{\"m\":[[1,2],[3]]}", false,
	        "12,3,");
	/* standalone section lines leave no blank line */
	renders("list:\n{{#l}}\n- {{.}}\n{{/l}}\nend", "{\"l\":[\"a\",\"b\"]}",
	        false, "list:\n- a\n- b\nend");
}

Test(template, numbers)
{
	renders("{{a}} {{b}} {{c}} {{d}}",
	        "{\"a\":0,\"b\":-17,\"c\":9223372036854775807,"
	        "\"d\":-9223372036854775808}",
	        false, "0 -17 9223372036854775807 -9223372036854775808");
	renders("{{a}} {{b}} {{c}} {{d}} {{e}} {{f}}",
	        "{\"a\":1.5,\"b\":0.1,\"c\":2.0,\"d\":-0.25,\"e\":1e20,"
	        "\"f\":0.30000000000000004}",
	        false, "1.5 0.1 2 -0.25 1e+20 0.30000000000000004");
	renders("{{a}} {{b}} {{c}} {{d}} {{e}}",
	        "{\"a\":100.0,\"b\":-1234500.0,\"c\":12.50,"
	        "\"d\":0.0001,\"e\":123456789012.25}",
	        false, "100 -1234500 12.5 0.0001 123456789012.25");
	/* a number is a value: its section shows, even 0 */
	renders("{{#n}}[{{.}}]{{/n}}", "{\"n\":0}", false, "[0]");
}

Test(template, utf8_passes_through)
{
	renders("Grüße, {{name}} ☎ {{#l}}{{.}}{{/l}}",
	        "{\"name\":\"Zoë <日本>\",\"l\":[\"é\",\"😀\"]}", true,
	        "Grüße, Zoë &lt;日本&gt; ☎ é😀");
	renders("{{name}}", "{\"name\":\"Zoë <日本>\"}", false, "Zoë <日本>");
	renders("{{café}}", "{\"café\":\"ok\"}", false, "ok");
}

Test(template, bad_templates)
{
	static const char *bad[] = {
	        "{{#a}}",
	        "{{#a}}x{{/b}}",
	        "x{{/a}}",
	        "{{name",
	        "{{#a}}{{#b}}{{/a}}{{/b}}",
	        "{{=<% %>=}}<%#a%>",
	};
	json_t *data = data_of("{\"a\":true,\"b\":true,\"name\":\"n\"}");
	vox_error_t err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vox_error_clear(&err);
		cr_assert_null(vox_template_render(bad[i], data, true, 0, &err),
		               "%s", bad[i]);
		cr_assert_eq(err.code, VOX_ERR_INVALID, "%s", bad[i]);
		cr_assert_not_null(strstr(err.message, "does not parse: "),
		                   "%s", err.message);
		cr_assert_gt(strlen(err.message),
		             strlen("template does not parse: "), "%s",
		             err.message);
		vox_error_clear(&err);
		cr_assert_not(vox_template_check(bad[i], &err), "%s", bad[i]);
		cr_assert_eq(err.code, VOX_ERR_INVALID);
	}
	vox_error_clear(&err);
	cr_assert_null(vox_template_render("{{#a}}", data, false, 0, &err));
	cr_assert_not_null(strstr(err.message, "a"), "%s", err.message);
	cr_assert(vox_template_check("{{#a}}{{b}}{{/a}}", NULL));
	cr_assert(vox_template_check("", NULL));
	cr_assert_not(vox_template_check(NULL, &err));
	cr_assert_null(vox_template_render(NULL, data, true, 0, &err));
	cr_assert_eq(err.code, VOX_ERR_INVALID);
	json_decref(data);
}

Test(template, data_shapes)
{
	vox_error_t err = {0};
	json_t *list = json_array();
	json_t *deep = json_object(), *level = deep;
	char *out;

	out = vox_template_render("plain {{x}}", NULL, true, 0, &err);
	cr_assert_not_null(out, "%s", err.message);
	cr_assert_str_eq(out, "plain ");
	free(out);
	cr_assert_null(vox_template_render("x", list, true, 0, &err));
	cr_assert_eq(err.code, VOX_ERR_INVALID);
	/* no partials are given: the tag renders nothing */
	renders("[{{> header}}]", "{}", false, "[]");
	for (int i = 0; i < 40; i++) {
		json_t *next = json_object();

		json_object_set_new(level, "n", next);
		level = next;
	}
	vox_error_clear(&err);
	cr_assert_null(vox_template_render("{{n.n}}", deep, true, 0, &err));
	cr_assert_eq(err.code, VOX_ERR_INVALID);
	cr_assert_not_null(strstr(err.message, "deeper"), "%s", err.message);
	json_decref(list);
	json_decref(deep);
}

Test(template, max_len)
{
	json_t *data = data_of("{\"s\":\"0123456789\"}");
	vox_error_t err = {0};
	char *out;

	out = vox_template_render("{{s}}", data, true, 10, &err);
	cr_assert_not_null(out, "%s", err.message);
	cr_assert_str_eq(out, "0123456789");
	free(out);
	cr_assert_null(vox_template_render("{{s}}!", data, true, 10, &err));
	cr_assert_eq(err.code, VOX_ERR_INVALID);
	cr_assert_not_null(strstr(err.message, "10 bytes"), "%s", err.message);
	/* escaping counts: "&" becomes 5 bytes */
	json_object_set_new(data, "s", json_string("&&"));
	cr_assert_null(vox_template_render("{{s}}", data, true, 9, &err));
	out = vox_template_render("{{s}}", data, false, 9, &err);
	cr_assert_str_eq(out, "&&");
	free(out);
	json_decref(data);
}

Test(template, default_max_len_is_one_mib)
{
	json_t *data = json_object(), *items = json_array();
	char chunk[1025];
	vox_error_t err = {0};
	char *out;

	memset(chunk, 'x', 1024);
	chunk[1024] = '\0';
	for (int i = 0; i < 1024; i++)
		json_array_append_new(items, json_string(chunk));
	json_object_set_new(data, "items", items);
	/* exactly 1 MiB */
	out = vox_template_render("{{#items}}{{.}}{{/items}}", data, false, 0,
	                          &err);
	cr_assert_not_null(out, "%s", err.message);
	cr_assert_eq(strlen(out), 1024 * 1024);
	free(out);
	cr_assert_null(vox_template_render("{{#items}}{{.}}{{/items}}!", data,
	                                   false, 0, &err));
	cr_assert_eq(err.code, VOX_ERR_INVALID);
	json_decref(data);
}

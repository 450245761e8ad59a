/*
 * vox_template: the C shim over kainjow's mustache.hpp (Debian
 * libkainjow-mustache-dev), see vox_template.h.
 *
 * Built without exceptions: the library reports a template that does not
 * parse through is_valid()/error_message() and throws nothing itself; the
 * only thing that could throw is std::bad_alloc, for which aborting is what
 * the C side would do too.
 *
 * The data is converted into the library's own tree (mustache::data):
 * objects, arrays as lists, strings; numbers as their text (integers as
 * they are, reals in the shortest form that reads back the same, so 1.5
 * and not 1.50000000000000000); true/false as booleans; null as false, so
 * {{x}} prints nothing and {{^x}} shows. Rendering goes through a handler
 * that stops keeping text past max_len, so an oversized result never sits
 * in memory whole.
 */
#include "vox_template.h"

#include <kainjow/mustache.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace mustache = kainjow::mustache;

namespace
{

constexpr size_t default_max_len = 1024 * 1024;
/* Deeper data is no notification: each level copies the one below. */
constexpr int max_depth = 32;

/* The shortest %g form of v that strtod reads back as v, written out
 * without an exponent from 1 to 1e16 (100, not 1e+02). */
std::string real_text(double v)
{
	char text[32];
	int precision = 1;

	for (; precision <= 17; precision++) {
		snprintf(text, sizeof(text), "%.*g", precision, v);
		if (strtod(text, nullptr) == v)
			break;
	}
	while ((v >= 1 || v <= -1) && v < 1e16 && v > -1e16 &&
	       strchr(text, 'e') != nullptr && precision < 17)
		snprintf(text, sizeof(text), "%.*g", ++precision, v);
	return text;
}

bool to_data(const json_t *value, int depth, mustache::data &out)
{
	if (depth > max_depth)
		return false;
	switch (json_typeof(value)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *member;

		out = mustache::data(mustache::data::type::object);
		json_object_foreach(const_cast<json_t *>(value), key, member)
		{
			mustache::data item;

			if (!to_data(member, depth + 1, item))
				return false;
			out[key] = std::move(item);
		}
		return true;
	}
	case JSON_ARRAY: {
		size_t index;
		json_t *element;

		out = mustache::data(mustache::data::type::list);
		json_array_foreach(value, index, element)
		{
			mustache::data item;

			if (!to_data(element, depth + 1, item))
				return false;
			out.push_back(item);
		}
		return true;
	}
	case JSON_STRING:
		out = mustache::data(std::string(json_string_value(value),
		                                 json_string_length(value)));
		return true;
	case JSON_INTEGER:
		out = mustache::data(std::to_string(json_integer_value(value)));
		return true;
	case JSON_REAL:
		out = mustache::data(real_text(json_real_value(value)));
		return true;
	case JSON_TRUE:
		out = mustache::data(true);
		return true;
	case JSON_FALSE:
	case JSON_NULL:
		out = mustache::data(false);
		return true;
	}
	return false;
}

/* Copies text into a malloc'ed C string; NULL when out of memory. */
char *c_string(const std::string &text)
{
	char *copy = static_cast<char *>(malloc(text.size() + 1));

	if (copy != nullptr)
		memcpy(copy, text.c_str(), text.size() + 1);
	return copy;
}

/* Whether parsed is a template; err says why not. */
bool parse_ok(const mustache::mustache &parsed, vox_error_t *err)
{
	if (parsed.is_valid())
		return true;
	vox_error_set(err, VOX_ERR_INVALID, false,
	              "template does not parse: %s",
	              parsed.error_message().c_str());
	return false;
}

bool present(const char *tmpl, vox_error_t *err)
{
	if (tmpl != nullptr)
		return true;
	vox_error_set(err, VOX_ERR_INVALID, false, "template is missing");
	return false;
}

} // namespace

extern "C" bool vox_template_check(const char *tmpl, vox_error_t *err)
{
	return present(tmpl, err) &&
	       parse_ok(mustache::mustache{std::string(tmpl)}, err);
}

extern "C" char *vox_template_render(const char *tmpl, const json_t *data,
                                     bool html, size_t max_len,
                                     vox_error_t *err)
{
	mustache::data root(mustache::data::type::object);
	std::string text;
	bool over = false;
	char *result;

	if (max_len == 0)
		max_len = default_max_len;
	if (!present(tmpl, err))
		return nullptr;
	if (data != nullptr && !json_is_object(data)) {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "template data must be an object");
		return nullptr;
	}
	if (data != nullptr && !to_data(data, 0, root)) {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "template data is nested deeper than %d",
		              max_depth);
		return nullptr;
	}
	mustache::mustache parsed{std::string(tmpl)};

	if (!parse_ok(parsed, err))
		return nullptr;
	if (!html)
		parsed.set_custom_escape(
		        [](const std::string &raw) { return raw; });
	parsed.render(root, [&](const std::string &piece) {
		if (over || piece.size() > max_len - text.size()) {
			over = true;
			return;
		}
		text.append(piece);
	});
	if (!parsed.is_valid()) {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "template does not render: %s",
		              parsed.error_message().c_str());
		return nullptr;
	}
	if (over) {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "rendered template is longer than %zu bytes",
		              max_len);
		return nullptr;
	}
	result = c_string(text);
	if (result == nullptr)
		vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	return result;
}

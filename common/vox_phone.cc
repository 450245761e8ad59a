/*
 * vox_phone: the C++ shim over libphonenumber (PhoneNumberUtil) and its
 * offline geocoder.
 *
 * Built without exceptions: libphonenumber reports through return codes,
 * and the only thing that could throw here is std::bad_alloc, for which
 * aborting is what the C side would do too. Input is screened before
 * libphonenumber sees it (length, characters), so the library only ever
 * gets short ASCII strings.
 *
 * Thread safety: PhoneNumberUtil::GetInstance() is a pthread_once
 * singleton whose methods are const. One geocoder serves the whole
 * process: it loads its prefix maps lazily under its own absl::Mutex.
 * Measured on 2 cores: a parse plus lookup takes about 10 us with a shared
 * geocoder or a new one per call, and 8 threads get the same 160k/s either
 * way, so the mutex costs nothing worth avoiding. It is never destroyed,
 * so no exit-time destructor races a thread still parsing.
 */
#include "vox_phone.h"

#include <phonenumbers/geocoding/phonenumber_offline_geocoder.h>
#include <phonenumbers/phonenumberutil.h>
#include <unicode/locid.h>
#include <unicode/unistr.h>

#include <cstdio>
#include <cstring>
#include <string>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberOfflineGeocoder;
using i18n::phonenumbers::PhoneNumberUtil;

namespace
{

/* Longer text is not a phone number ("+1 (415) 555-0123" is 17). */
constexpr size_t max_text_len = 64;
/* Country code (3) plus the longest national number (17). */
constexpr int max_digits = 20;
/* ITU-T E.164: country code included. */
constexpr int max_e164_digits = 15;

const PhoneNumberUtil &util()
{
	return *PhoneNumberUtil::GetInstance();
}

const PhoneNumberOfflineGeocoder &geocoder()
{
	static const PhoneNumberOfflineGeocoder *geo =
	        new PhoneNumberOfflineGeocoder();
	return *geo;
}

/* ASCII only: <cctype> would follow the locale. */
bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* Exactly two ASCII letters, upper-cased into out. */
bool region_normalize(const char *region, char out[3])
{
	if (region == nullptr)
		return false;
	for (int i = 0; i < 2; i++) {
		char ch = region[i];

		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		if (ch < 'A' || ch > 'Z')
			return false;
		out[i] = ch;
	}
	out[2] = '\0';
	return region[2] == '\0';
}

/* Copies src into dst[size] when it fits; false otherwise. */
bool copy_fits(char *dst, size_t size, const std::string &src)
{
	if (src.size() >= size)
		return false;
	memcpy(dst, src.c_str(), src.size() + 1);
	return true;
}

/* Copies src cut to size-1 bytes without splitting a UTF-8 sequence. */
void copy_utf8(char *dst, size_t size, const std::string &src)
{
	size_t len = src.size();

	if (len >= size) {
		len = size - 1;
		while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80)
			len--;
	}
	memcpy(dst, src.data(), len);
	dst[len] = '\0';
}

const char *type_name(PhoneNumberUtil::PhoneNumberType type)
{
	switch (type) {
	case PhoneNumberUtil::FIXED_LINE:
	case PhoneNumberUtil::FIXED_LINE_OR_MOBILE:
		return "local";
	case PhoneNumberUtil::MOBILE:
		return "mobile";
	case PhoneNumberUtil::TOLL_FREE:
		return "toll_free";
	case PhoneNumberUtil::PREMIUM_RATE:
		return "premium_rate";
	case PhoneNumberUtil::SHARED_COST:
		return "shared_cost";
	case PhoneNumberUtil::VOIP:
		return "voip";
	case PhoneNumberUtil::PERSONAL_NUMBER:
		return "personal";
	case PhoneNumberUtil::PAGER:
		return "pager";
	case PhoneNumberUtil::UAN:
		return "uan";
	case PhoneNumberUtil::VOICEMAIL:
		return "voicemail";
	case PhoneNumberUtil::UNKNOWN:
		break;
	}
	return "unknown";
}

/*
 * Refuses what libphonenumber would accept but we must not: letters
 * (vanity numbers and extensions would be translated or dropped), a '+'
 * anywhere but first, non-ASCII. Counts the digits.
 */
int screen(const char *text, bool international, vox_error_t *err)
{
	size_t len = strnlen(text, max_text_len + 1);
	bool seen_plus = false;
	int digits = 0;

	if (len > max_text_len)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "not a phone number: longer than %zu "
		                     "characters",
		                     max_text_len);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)text[i];

		if (is_digit((char)ch)) {
			digits++;
		} else if (ch == '+' && digits == 0 && !seen_plus) {
			seen_plus = true;
		} else if (!(ch == ' ' || ch == '-' || ch == '.' || ch == '(' ||
		             ch == ')' || ch == '/')) {
			return vox_error_set(
			        err, VOX_ERR_INVALID, false,
			        ch > ' ' && ch < 0x7f
			                ? "not a phone number: unexpected '%c'"
			                : "not a phone number: unexpected "
			                  "byte 0x%02x",
			        ch);
		}
	}
	if (digits == 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "not a phone number");
	if (international && !seen_plus)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "not an international number: start with "
		                     "+ and the country calling code");
	if (digits > max_digits)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "not a phone number: %d digits", digits);
	return 0;
}

int parse_error(PhoneNumberUtil::ErrorType error, const char *region,
                vox_error_t *err)
{
	const char *what = region[0] != '\0' ? region : "its country";

	switch (error) {
	case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "unsupported country calling code");
	case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
	case PhoneNumberUtil::TOO_SHORT_NSN:
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "too short for %s", what);
	case PhoneNumberUtil::TOO_LONG_NSN:
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "too long for %s", what);
	default:
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "not a phone number");
	}
}

/* Why a parsed number is not valid, naming the region it is judged for. */
int invalid_reason(const PhoneNumber &number, const char *region,
                   vox_error_t *err)
{
	switch (util().IsPossibleNumberWithReason(number)) {
	case PhoneNumberUtil::INVALID_COUNTRY_CODE:
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "unsupported country calling code +%d",
		                     number.country_code());
	case PhoneNumberUtil::TOO_SHORT:
	case PhoneNumberUtil::IS_POSSIBLE_LOCAL_ONLY: /* area code missing */
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "too short for %s", region);
	case PhoneNumberUtil::TOO_LONG:
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "too long for %s", region);
	case PhoneNumberUtil::INVALID_LENGTH:
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "wrong length for %s", region);
	default:
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "invalid number for %s", region);
	}
}

/* The area below the country, or "": the geocoder falls back to the
 * country's English name when it knows nothing finer. */
std::string city_of(const PhoneNumber &number, const std::string &region)
{
	const icu::Locale &english = icu::Locale::getEnglish();
	std::string desc =
	        geocoder().GetDescriptionForValidNumber(number, english);
	icu::UnicodeString country_name;
	std::string country;

	icu::Locale("", region.c_str())
	        .getDisplayCountry(english, country_name);
	country_name.toUTF8String(country);
	if (desc == country)
		desc.clear();
	return desc;
}

int fill(const PhoneNumber &number, vox_phone_t *out, vox_error_t *err)
{
	const PhoneNumberUtil &pnu = util();
	std::string e164, region, national;
	int ndc;

	pnu.Format(number, PhoneNumberUtil::E164, &e164);
	pnu.GetRegionCodeForNumber(number, &region);
	/* libphonenumber knows valid German numbers of 16 digits */
	if (e164.size() > 1 + max_e164_digits)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "too long for %s: E.164 allows %d digits",
		                     region.c_str(), max_e164_digits);
	pnu.GetNationalSignificantNumber(number, &national);
	if (!copy_fits(out->e164, sizeof(out->e164), e164) ||
	    !copy_fits(out->region, sizeof(out->region), region) ||
	    !copy_fits(out->national, sizeof(out->national), national))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "unsupported number %s", e164.c_str());
	out->country_code = number.country_code();
	ndc = pnu.GetLengthOfNationalDestinationCode(number);
	if (ndc > 0 && (size_t)ndc < national.size() &&
	    (size_t)ndc < sizeof(out->area_code))
		copy_fits(out->area_code, sizeof(out->area_code),
		          national.substr(0, (size_t)ndc));
	copy_fits(out->type, sizeof(out->type),
	          type_name(pnu.GetNumberType(number)));
	copy_utf8(out->city, sizeof(out->city), city_of(number, region));
	return 0;
}

int parse(const char *text, const char *default_region, vox_phone_t *out,
          vox_error_t *err)
{
	const PhoneNumberUtil &pnu = util();
	char region[3] = "";
	std::string judged;
	PhoneNumberUtil::ErrorType perr;
	PhoneNumber number;
	int rc;

	if (text == nullptr)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "not a phone number: none given");
	if (default_region != nullptr &&
	    (!region_normalize(default_region, region) ||
	     pnu.GetCountryCodeForRegion(region) == 0))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "unsupported region %.8s", default_region);
	rc = screen(text, default_region == nullptr, err);
	if (rc != 0)
		return rc;
	perr = pnu.Parse(text, default_region != nullptr ? region : "ZZ",
	                 &number);
	if (perr != PhoneNumberUtil::NO_PARSING_ERROR)
		return parse_error(perr, region, err);

	/* Judge the number for the region the caller meant when it is in
	 * that region's plan, else for the main region of its country code. */
	if (region[0] != '\0' &&
	    pnu.GetCountryCodeForRegion(region) == number.country_code())
		judged = region;
	else
		pnu.GetRegionCodeForCountryCode(number.country_code(), &judged);
	if (judged == PhoneNumberUtil::kRegionCodeForNonGeoEntity)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "unsupported country calling code +%d: "
		                     "not a geographic one",
		                     number.country_code());
	if (judged.size() != 2)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "unsupported country calling code +%d",
		                     number.country_code());
	if (!pnu.IsValidNumber(number))
		return invalid_reason(number, judged.c_str(), err);
	return fill(number, out, err);
}

} // namespace

extern "C" int vox_phone_parse(const char *text, const char *default_region,
                               vox_phone_t *out, vox_error_t *err)
{
	vox_phone_t parsed;
	char prev[sizeof(parsed.e164)] = "";
	int rc;

	memset(&parsed, 0, sizeof(parsed));
	rc = parse(text, default_region, &parsed, err);
	/* The E.164 form must be a fixed point: libphonenumber drops a legacy
	 * prefix on each parse for some plans (Mexico's mobile "1": +52 1 1
	 * 612... gives +52 1 612..., which gives +52 612...), so parse the
	 * result again until it stays the same. Input already in canonical
	 * form (the usual case) costs one comparison. */
	for (int round = 0; rc == 0 && text != nullptr &&
	                    strcmp(parsed.e164, round ? prev : text) != 0;
	     round++) {
		vox_phone_t again;

		if (round == 3) {
			rc = vox_error_set(
			        err, VOX_ERR_INVALID, false,
			        "not a phone number: no stable E.164 "
			        "form for %s",
			        parsed.e164);
			break;
		}
		memcpy(prev, parsed.e164, sizeof(prev));
		memset(&again, 0, sizeof(again));
		rc = parse(prev, nullptr, &again, err);
		if (rc == 0)
			parsed = again;
	}
	if (rc != 0)
		memset(&parsed, 0, sizeof(parsed));
	if (out != nullptr)
		*out = parsed;
	return rc;
}

extern "C" bool vox_phone_is_e164(const char *text)
{
	vox_phone_t phone = {};
	size_t len;

	if (text == nullptr || text[0] != '+' || text[1] < '1' || text[1] > '9')
		return false;
	len = strnlen(text, max_e164_digits + 2);
	if (len < 3 || len > 1 + max_e164_digits)
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_digit(text[i]))
			return false;
	return parse(text, nullptr, &phone, nullptr) == 0 &&
	       strcmp(phone.e164, text) == 0;
}

extern "C" bool vox_phone_region_supported(const char *region)
{
	return vox_phone_country_code(region) != 0;
}

extern "C" int vox_phone_country_code(const char *region)
{
	char code[3];

	if (!region_normalize(region, code))
		return 0;
	return util().GetCountryCodeForRegion(code);
}

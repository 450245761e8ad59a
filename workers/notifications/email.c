/*
 * Email over SMTP with libcurl (vox_upstream is HTTP only): a
 * multipart/alternative message (text and HTML, UTF-8) built with curl's
 * MIME API. 250 is delivered; a 5xx refusal fails the row for good (the
 * chain moves on); no connection, 4xx or a timeout retry on the message
 * schedule until the step's deadline.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notifications.h"

/* Delay before the next try after try n (s): 0, 30 s, 2 min, 10 min, and
 * 10 min after that (email and SMS). */
static const double message_schedule_s[] = {0, 30, 120, 600};

long notify_message_retry_ms(const struct notify_ctx *nc, int attempts)
{
	int last = (int)(sizeof(message_schedule_s) /
	                 sizeof(message_schedule_s[0])) -
	           1;

	return notify_scaled_ms(
	        nc, message_schedule_s[attempts < last ? attempts : last]);
}

/* "Subject: " + the text, RFC 2047 encoded (base64) when not plain ASCII;
 * line breaks never reach the header. */
static char *email_subject(const char *text)
{
	size_t len = strlen(text), i;
	bool ascii = true;
	char *clean, *line;

	clean = strdup(text);
	if (clean == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (clean[i] == '\r' || clean[i] == '\n' || clean[i] == '\t')
			clean[i] = ' ';
		if ((unsigned char)clean[i] >= 0x80 ||
		    (unsigned char)clean[i] < 0x20)
			ascii = false;
	}
	line = malloc(4 * len / 3 + 40);
	if (line != NULL && ascii)
		snprintf(line, 4 * len / 3 + 40, "Subject: %s", clean);
	else if (line != NULL) {
		memcpy(line, "Subject: =?UTF-8?B?", 19);
		int n = EVP_EncodeBlock((unsigned char *)line + 19,
		                        (const unsigned char *)clean, (int)len);
		memcpy(line + 19 + n, "?=", 3);
	}
	free(clean);
	return line;
}

/* The address inside "Name <addr>", or the whole text. */
static void email_address(const char *from, char *out, size_t outlen)
{
	const char *lt = strchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;

	if (lt != NULL && gt != NULL)
		snprintf(out, outlen, "<%.*s>", (int)(gt - lt - 1), lt + 1);
	else
		snprintf(out, outlen, "<%s>", from);
}

static struct curl_slist *email_headers(const struct notify_ctx *nc,
                                        const struct notify_delivery *d,
                                        const char *subject)
{
	char line[400], date[64];
	struct curl_slist *h = NULL, *next;
	time_t now = time(NULL);
	struct tm tm;
	char *subj = email_subject(subject);

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (subj == NULL)
		return NULL;
	h = curl_slist_append(h, subj);
	free(subj);
	const char *lines[][3] = {{"From: ", nc->mail_from, ""},
	                          {"To: <", d->recipient, ">"},
	                          {"Date: ", date, ""},
	                          {"Message-ID: <", d->id, "@voxlink.test>"}};
	for (size_t i = 0; h != NULL && i < sizeof(lines) / sizeof(lines[0]);
	     i++) {
		snprintf(line, sizeof(line), "%s%s%s", lines[i][0], lines[i][1],
		         lines[i][2]);
		next = curl_slist_append(h, line);
		if (next == NULL)
			curl_slist_free_all(h);
		h = next;
	}
	return h;
}

/* multipart/alternative: text, then HTML (the preferred last). */
static curl_mime *email_body(CURL *curl, const char *text, const char *html)
{
	curl_mime *mime = curl_mime_init(curl), *alt = curl_mime_init(curl);
	curl_mimepart *part;
	struct curl_slist *inline_h;

	if (mime == NULL || alt == NULL) {
		curl_mime_free(alt);
		curl_mime_free(mime);
		return NULL;
	}
	part = curl_mime_addpart(alt);
	curl_mime_data(part, text, CURL_ZERO_TERMINATED);
	curl_mime_type(part, "text/plain; charset=UTF-8");
	curl_mime_encoder(part, "quoted-printable");
	part = curl_mime_addpart(alt);
	curl_mime_data(part, html, CURL_ZERO_TERMINATED);
	curl_mime_type(part, "text/html; charset=UTF-8");
	curl_mime_encoder(part, "quoted-printable");
	part = curl_mime_addpart(mime);
	curl_mime_subparts(part, alt); /* alt now owned by mime */
	curl_mime_type(part, "multipart/alternative");
	inline_h = curl_slist_append(NULL, "Content-Disposition: inline");
	curl_mime_headers(part, inline_h, 1);
	return mime;
}

/* What curl's answer means for the row. */
static void email_outcome(const struct notify_ctx *nc,
                          struct notify_delivery *d, CURLcode rc, long code,
                          const char *why)
{
	if (rc == CURLE_OK) {
		notify_outcome(d, NOTIFY_DELIVERED, (int)code, NULL);
		return;
	}
	if (code >= 500 && code < 600) {
		notify_outcome(d, NOTIFY_FAILED, (int)code,
		               "SMTP %ld: refused for good: %s", code, why);
		return;
	}
	notify_outcome(d, NOTIFY_RETRY, (int)code, "SMTP %ld: %s", code, why);
	d->retry_ms = notify_message_retry_ms(nc, d->attempts);
}

static void email_perform(const struct notify_ctx *nc,
                          struct notify_delivery *d, const char *subject,
                          const char *text, const char *html)
{
	char from[330], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *rcpt = NULL, *headers = NULL;
	curl_mime *mime = NULL;
	CURL *curl = curl_easy_init();
	CURLcode rc = CURLE_OUT_OF_MEMORY;
	long code = 0;

	email_address(nc->mail_from, from, sizeof(from));
	rcpt = curl_slist_append(NULL, d->recipient);
	headers = email_headers(nc, d, subject);
	if (curl == NULL || rcpt == NULL || headers == NULL ||
	    (mime = email_body(curl, text, html)) == NULL)
		goto out;
	curl_easy_setopt(curl, CURLOPT_URL, nc->smtp_url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, nc->smtp_timeout_ms);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_MIMEPOST, mime);
	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
out:
	email_outcome(nc, d, rc, code,
	              *errbuf ? errbuf : curl_easy_strerror(rc));
	curl_mime_free(mime);
	curl_slist_free_all(headers);
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(curl);
}

void notify_email_send(const struct notify_ctx *nc, struct notify_delivery *d)
{
	char *subject = NULL, *text = NULL, *html = NULL;
	vox_error_t err;

	if ((subject = notify_render(nc->templates, d, "subject", &err)) &&
	    (text = notify_render(nc->templates, d, "txt", &err)) &&
	    (html = notify_render(nc->templates, d, "html", &err)))
		email_perform(nc, d, subject, text, html);
	else
		notify_outcome(d, NOTIFY_FAILED, 0, "template: %s",
		               err.message);
	free(subject);
	free(text);
	free(html);
}

/*
 * GET /v1/invoices/{id}/pdf: the invoice rendered with libharu (Debian's
 * libhpdf): seller, account, number, the period in the account's time
 * zone, the lines (quantity, unit price, amount; as many pages as they
 * need, the table header repeated), subtotal, tax with its rate, total,
 * credit notes, payments and the amount due. A draft has no number and is
 * watermarked DRAFT on every page. Amounts are shown exactly, to the
 * micro-unit, as they are stored; the amount due is in the currency's
 * minor unit, as it is charged (docs/BILLING.md).
 *
 * The standard fonts are WinAnsi: text outside printable ASCII (a
 * description in another script) is shown as '?'.
 */
#include <hpdf.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "vox_money.h"

#define PAGE_W       595.0f /* A4, points */
#define PAGE_H       842.0f
#define MARGIN       50.0f
#define LINE_H       15.0f
#define TABLE_TOP    560.0f /* first page: below the header blocks */
#define TABLE_TOP_N  760.0f /* later pages */
#define TABLE_BOTTOM 90.0f
#define DESC_MAX     58

struct pdf {
	HPDF_Doc doc;
	HPDF_Font font, bold;
	HPDF_Page page;
	int pages;
	bool draft;
	const char *number; /* for the page footers */
	HPDF_STATUS error;
	jmp_buf fail;
};

static void pdf_error(HPDF_STATUS error, HPDF_STATUS detail, void *arg)
{
	struct pdf *p = arg;

	(void)detail;
	p->error = error;
	longjmp(p->fail, 1);
}

/* Printable ASCII only (the standard fonts' encoding), at most max
 * characters (… as "..."). */
static void ascii(const char *in, char *out, size_t outlen, size_t max)
{
	size_t n = 0;

	for (const unsigned char *s = (const unsigned char *)in;
	     *s && n + 1 < outlen; s++) {
		if ((*s & 0xC0) == 0x80)
			continue; /* a UTF-8 continuation byte */
		out[n++] = (*s >= 0x20 && *s < 0x7f) ? (char)*s : '?';
	}
	out[n] = '\0';
	if (max >= 3 && n > max)
		memcpy(out + max - 3, "...", 4);
}

static void text(struct pdf *p, HPDF_Font font, float size, float x, float y,
                 const char *s)
{
	char clean[512];

	ascii(s, clean, sizeof(clean), sizeof(clean) - 1);
	HPDF_Page_BeginText(p->page);
	HPDF_Page_SetFontAndSize(p->page, font, size);
	HPDF_Page_TextOut(p->page, x, y, clean);
	HPDF_Page_EndText(p->page);
}

/* Right-aligned at x. */
static void text_right(struct pdf *p, HPDF_Font font, float size, float x,
                       float y, const char *s)
{
	char clean[512];
	float w;

	ascii(s, clean, sizeof(clean), sizeof(clean) - 1);
	HPDF_Page_SetFontAndSize(p->page, font, size);
	w = HPDF_Page_TextWidth(p->page, clean);
	text(p, font, size, x - w, y, clean);
}

static void watermark(struct pdf *p)
{
	HPDF_Page_GSave(p->page);
	HPDF_Page_SetRGBFill(p->page, 0.85f, 0.85f, 0.85f);
	HPDF_Page_BeginText(p->page);
	HPDF_Page_SetFontAndSize(p->page, p->bold, 120);
	/* 45 degrees, across the middle of the page */
	HPDF_Page_SetTextMatrix(p->page, 0.7071f, 0.7071f, -0.7071f, 0.7071f,
	                        150, 250);
	HPDF_Page_ShowText(p->page, "DRAFT");
	HPDF_Page_EndText(p->page);
	HPDF_Page_GRestore(p->page);
}

static void new_page(struct pdf *p)
{
	p->page = HPDF_AddPage(p->doc);
	HPDF_Page_SetWidth(p->page, PAGE_W);
	HPDF_Page_SetHeight(p->page, PAGE_H);
	p->pages++;
	if (p->draft)
		watermark(p);
}

static void table_header(struct pdf *p, float y)
{
	text(p, p->bold, 9, MARGIN, y, "Description");
	text_right(p, p->bold, 9, 360, y, "Quantity");
	text_right(p, p->bold, 9, 455, y, "Unit price");
	text_right(p, p->bold, 9, PAGE_W - MARGIN, y, "Amount");
	HPDF_Page_SetLineWidth(p->page, 0.5f);
	HPDF_Page_MoveTo(p->page, MARGIN, y - 4);
	HPDF_Page_LineTo(p->page, PAGE_W - MARGIN, y - 4);
	HPDF_Page_Stroke(p->page);
}

/* A new page with the table header when y went below the bottom. */
static float room(struct pdf *p, float y, float need)
{
	if (y - need >= TABLE_BOTTOM)
		return y;
	new_page(p);
	text(p, p->font, 9, MARGIN, PAGE_H - 40, p->number);
	table_header(p, TABLE_TOP_N);
	return TABLE_TOP_N - LINE_H - 2;
}

static const char *unit_name(const char *unit, long long qty)
{
	if (strcmp(unit, "each") == 0)
		return "";
	if (strcmp(unit, "second") == 0)
		return qty == 1 ? " s" : " s";
	if (strcmp(unit, "message") == 0)
		return qty == 1 ? " message" : " messages";
	if (strcmp(unit, "month") == 0)
		return qty == 1 ? " month" : " months";
	if (strcmp(unit, "minute") == 0)
		return " min";
	return "";
}

static void money(long long micros, const char *currency, char out[48])
{
	char m[32];

	vox_money_format(micros, m);
	snprintf(out, 48, "%s %s", m, currency);
}

static float totals_row(struct pdf *p, float y, const char *label,
                        const char *value, bool strong)
{
	y = room(p, y, LINE_H);
	text_right(p, strong ? p->bold : p->font, 10, 455, y, label);
	text_right(p, strong ? p->bold : p->font, 10, PAGE_W - MARGIN, y,
	           value);
	return y - LINE_H;
}

static void header(struct pdf *p, const PGresult *inv, const char *name,
                   const char *account_id, const char *const *local)
{
	const char *currency = PQgetvalue(inv, 0, IC_CURRENCY);
	char buf[256];

	(void)currency;
	text(p, p->bold, 20, MARGIN, PAGE_H - 70, "INVOICE");
	text(p, p->bold, 11, MARGIN, PAGE_H - 95, "VoxLink, Inc.");
	text(p, p->font, 9, MARGIN, PAGE_H - 108, "548 Market Street");
	text(p, p->font, 9, MARGIN, PAGE_H - 120,
	     "San Francisco, CA 94104, United States");
	text(p, p->font, 9, MARGIN, PAGE_H - 132, "billing@voxlink.example");

	snprintf(buf, sizeof(buf), "Invoice number: %s",
	         PQgetisnull(inv, 0, IC_NUMBER)
	                 ? "(draft: none yet)"
	                 : PQgetvalue(inv, 0, IC_NUMBER));
	text_right(p, p->bold, 10, PAGE_W - MARGIN, PAGE_H - 95, buf);
	snprintf(buf, sizeof(buf), "Status: %s", PQgetvalue(inv, 0, IC_STATUS));
	text_right(p, p->font, 9, PAGE_W - MARGIN, PAGE_H - 108, buf);
	snprintf(buf, sizeof(buf), "Issued: %s", local[2][0] ? local[2] : "-");
	text_right(p, p->font, 9, PAGE_W - MARGIN, PAGE_H - 120, buf);
	snprintf(buf, sizeof(buf), "Due: %s", local[3][0] ? local[3] : "-");
	text_right(p, p->font, 9, PAGE_W - MARGIN, PAGE_H - 132, buf);

	text(p, p->bold, 10, MARGIN, PAGE_H - 170, "Bill to");
	text(p, p->font, 10, MARGIN, PAGE_H - 184, name);
	snprintf(buf, sizeof(buf), "Account %s", account_id);
	text(p, p->font, 9, MARGIN, PAGE_H - 197, buf);

	text(p, p->bold, 10, 330, PAGE_H - 170, "Billing period");
	snprintf(buf, sizeof(buf), "%s to %s (inclusive)", local[0], local[1]);
	text(p, p->font, 10, 330, PAGE_H - 184, buf);
	snprintf(buf, sizeof(buf), "Time zone: %s",
	         PQgetvalue(inv, 0, IC_TIMEZONE));
	text(p, p->font, 9, 330, PAGE_H - 197, buf);
}

static void footers(struct pdf *p)
{
	HPDF_Page page;
	char buf[96];
	int i = 0;

	/* libharu keeps the pages in order: number them now that the count
	 * is known. */
	for (i = 0; i < p->pages; i++) {
		page = HPDF_GetPageByIndex(p->doc, (HPDF_UINT)i);
		p->page = page;
		snprintf(buf, sizeof(buf), "%s - page %d of %d", p->number,
		         i + 1, p->pages);
		text_right(p, p->font, 8, PAGE_W - MARGIN, 40, buf);
	}
}

/* Everything between the document's making and its saving; libharu's
 * errors longjmp out of it (pdf_error). */
static void render(struct pdf *p, const PGresult *inv, const PGresult *lines,
                   const PGresult *notes, const char *account_name,
                   const char *account_id)
{
	const char *currency = PQgetvalue(inv, 0, IC_CURRENCY);
	const char *local[4];
	char buf[160], amount[48], price[48], qty[64];
	float y;

	/* Local dates: period start, period's last day, issued, due ("" when
	 * none), the columns after INVOICE_COLUMNS. */
	for (int i = 0; i < 4; i++)
		local[i] = PQgetisnull(inv, 0, IC_NCOLS + i)
		                   ? ""
		                   : PQgetvalue(inv, 0, IC_NCOLS + i);
	HPDF_SetCompressionMode(p->doc, HPDF_COMP_ALL);
	HPDF_SetInfoAttr(p->doc, HPDF_INFO_CREATOR, "VoxLink");
	HPDF_SetInfoAttr(p->doc, HPDF_INFO_TITLE, p->number);
	p->font = HPDF_GetFont(p->doc, "Helvetica", NULL);
	p->bold = HPDF_GetFont(p->doc, "Helvetica-Bold", NULL);
	new_page(p);
	header(p, inv, account_name, account_id, local);
	table_header(p, TABLE_TOP);
	y = TABLE_TOP - LINE_H - 2;
	for (int i = 0; i < PQntuples(lines); i++) {
		long long q = billing_micros(lines, i, LC_QUANTITY);
		char desc[DESC_MAX + 8];

		y = room(p, y, LINE_H);
		ascii(PQgetvalue(lines, i, LC_DESCRIPTION), desc, sizeof(desc),
		      DESC_MAX);
		text(p, p->font, 9, MARGIN, y, desc);
		snprintf(qty, sizeof(qty), "%lld%s", q,
		         unit_name(PQgetvalue(lines, i, LC_UNIT), q));
		text_right(p, p->font, 9, 360, y, qty);
		vox_money_format(billing_micros(lines, i, LC_UNIT_PRICE),
		                 price);
		text_right(p, p->font, 9, 455, y, price);
		money(billing_micros(lines, i, LC_AMOUNT), currency, amount);
		text_right(p, p->font, 9, PAGE_W - MARGIN, y, amount);
		y -= LINE_H;
	}
	if (PQntuples(lines) == 0) {
		text(p, p->font, 9, MARGIN, y, "No charges in this period.");
		y -= LINE_H;
	}
	y -= 6;
	money(billing_micros(inv, 0, IC_SUBTOTAL), currency, amount);
	y = totals_row(p, y, "Subtotal", amount, false);
	{
		long long ppm = billing_micros(inv, 0, IC_TAX_RATE);

		snprintf(buf, sizeof(buf), "Tax (%lld.%04lld %%)", ppm / 10000,
		         ppm % 10000);
	}
	money(billing_micros(inv, 0, IC_TAX), currency, amount);
	y = totals_row(p, y, buf, amount, false);
	money(billing_micros(inv, 0, IC_TOTAL), currency, amount);
	y = totals_row(p, y, "Total", amount, true);
	if (billing_micros(inv, 0, IC_CREDIT_APPLIED) > 0) {
		money(-billing_micros(inv, 0, IC_CREDIT_APPLIED), currency,
		      amount);
		y = totals_row(p, y, "Account credit applied", amount, false);
	}
	for (int i = 0; notes != NULL && i < PQntuples(notes); i++) {
		snprintf(buf, sizeof(buf), "Credit note %s",
		         PQgetvalue(notes, i, 0));
		money(-billing_micros(notes, i, 1), currency, amount);
		y = totals_row(p, y, buf, amount, false);
	}
	if (billing_micros(inv, 0, IC_PAID) > 0) {
		money(-billing_micros(inv, 0, IC_PAID), currency, amount);
		y = totals_row(p, y, "Paid", amount, false);
	}
	{
		char due[32];

		vox_money_format_minor(billing_micros(inv, 0, IC_DUE), currency,
		                       due);
		snprintf(amount, sizeof(amount), "%s %s", due, currency);
	}
	y = totals_row(p, y, "Amount due", amount, true);
	y = room(p, y, 3 * LINE_H);
	text(p, p->font, 8, MARGIN, y - 6,
	     "Amounts are exact to the micro-unit (1/1,000,000); each line is "
	     "rounded once, then the tax.");
	text(p, p->font, 8, MARGIN, y - 18,
	     "The amount due is rounded to the currency's minor unit, as it "
	     "is charged.");
	footers(p);
	HPDF_SaveToStream(p->doc);
}

int billing_pdf_render(const PGresult *inv, const PGresult *lines,
                       const PGresult *notes, const char *account_name,
                       const char *account_id, unsigned char **out, size_t *len,
                       vox_error_t *err)
{
	struct pdf p = {0};
	char number[96];
	HPDF_UINT32 size;

	snprintf(number, sizeof(number), "Invoice %s",
	         PQgetisnull(inv, 0, IC_NUMBER)
	                 ? "DRAFT"
	                 : PQgetvalue(inv, 0, IC_NUMBER));
	p.number = number;
	p.draft = strcmp(PQgetvalue(inv, 0, IC_STATUS), "draft") == 0;
	p.doc = HPDF_New(pdf_error, &p);
	if (p.doc == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, false,
		                     "libharu: cannot make a document");
	if (setjmp(p.fail) != 0) {
		HPDF_Free(p.doc);
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "libharu error 0x%04X", (unsigned)p.error);
	}
	render(&p, inv, lines, notes, account_name, account_id);
	size = HPDF_GetStreamSize(p.doc);
	*out = malloc(size > 0 ? size : 1);
	if (*out == NULL) {
		HPDF_Free(p.doc);
		return vox_error_set(err, VOX_ERR_NOMEM, false,
		                     "out of memory");
	}
	HPDF_ResetStream(p.doc);
	*len = 0;
	while (*len < size) {
		HPDF_UINT32 n = size - (HPDF_UINT32)*len;
		HPDF_STATUS st = HPDF_ReadFromStream(p.doc, *out + *len, &n);

		*len += n;
		if (st == HPDF_STREAM_EOF || n == 0)
			break;
	}
	HPDF_Free(p.doc);
	return 0;
}

/* The local dates appended after INVOICE_COLUMNS, and the account name. */
#define PDF_SQL                                                                \
	"SELECT " INVOICE_COLUMNS                                              \
	", to_char(i.period_start AT TIME ZONE COALESCE(i.timezone, "          \
	"a.timezone), 'YYYY-MM-DD'), to_char((i.period_end AT TIME ZONE "      \
	"COALESCE(i.timezone, a.timezone)) - interval '1 day', "               \
	"'YYYY-MM-DD'), to_char(i.issued_at AT TIME ZONE COALESCE("            \
	"i.timezone, a.timezone), 'YYYY-MM-DD'), to_char(i.due_at AT TIME "    \
	"ZONE COALESCE(i.timezone, a.timezone), 'YYYY-MM-DD'), a.name FROM "   \
	"invoices i JOIN accounts a ON a.id = i.account_id WHERE i.id = $1 "   \
	"AND i.account_id = $2"

void ingress_invoice_pdf(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	PGresult *inv, *lines = NULL, *notes = NULL;
	unsigned char *pdf = NULL;
	vox_error_t err = {0};
	char disp[160];
	size_t len = 0;

	if (ir == NULL ||
	    (inv = ingress_lookup(req, ir, "ingress_invoice_pdf", PDF_SQL, id,
	                          "invoice_not_found", "invoice")) == NULL)
		return;
	if ((lines = billing_invoice_lines(req, ir, id)) == NULL ||
	    (notes = billing_invoice_credit_notes(req, ir, id)) == NULL)
		goto out;
	if (billing_pdf_render(inv, lines, notes,
	                       PQgetvalue(inv, 0, IC_NCOLS + 4),
	                       ir->who.account_id, &pdf, &len, &err) != 0) {
		ingress_error(req, 500, "internal", err.message, NULL);
		goto out;
	}
	snprintf(disp, sizeof(disp), "inline; filename=\"invoice-%s.pdf\"",
	         PQgetisnull(inv, 0, IC_NUMBER)
	                 ? id
	                 : PQgetvalue(inv, 0, IC_NUMBER));
	vox_http_add_header(req, "Content-Disposition", disp);
	vox_http_reply(req, 200, "application/pdf", (const char *)pdf, len);
out:
	free(pdf);
	PQclear(inv);
	PQclear(lines);
	PQclear(notes);
}

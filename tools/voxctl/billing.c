/*
 * voxctl billing ACCOUNT [--tax-rate-ppm N] [--grace-days N]
 *                        [--terms-days N] [--dunning-plan NAME]
 *                        [--anchor-day N]
 *
 * An account's billing settings (docs/BILLING.md, docs/VOXCTL.md): the
 * operator's side of what customers cannot change themselves (tax rate,
 * grace period, payment terms, dunning plan). Without options it only
 * prints them. The row is made with the defaults on first use; the anchor
 * day changes only while the account has no invoice, as through the API.
 * Prints the settings as one JSON object.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "voxctl.h"

#define BILLING_USAGE                                                          \
	"voxctl billing ACCOUNT [--tax-rate-ppm N] [--grace-days N] "          \
	"[--terms-days N] [--dunning-plan NAME] [--anchor-day N]"

struct billing_args {
	const char *account;
	const char *tax, *grace, *terms, *plan, *anchor;
};

/* A whole number min..max written plainly (no sign, no spaces). */
static bool int_arg(const char *text, long min, long max)
{
	char *end;
	long v;

	if (text == NULL || *text == '\0' || strlen(text) > 9 ||
	    strspn(text, "0123456789") != strlen(text))
		return false;
	v = strtol(text, &end, 10);
	return *end == '\0' && v >= min && v <= max;
}

static bool plan_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static int billing_read(int argc, char **argv, struct billing_args *a)
{
	static const struct option longopts[] = {
	        {"tax-rate-ppm", required_argument, NULL, 't'},
	        {"grace-days", required_argument, NULL, 'g'},
	        {"terms-days", required_argument, NULL, 'p'},
	        {"dunning-plan", required_argument, NULL, 'd'},
	        {"anchor-day", required_argument, NULL, 'a'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int opt;

	voxctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 't':
			a->tax = optarg;
			break;
		case 'g':
			a->grace = optarg;
			break;
		case 'p':
			a->terms = optarg;
			break;
		case 'd':
			a->plan = optarg;
			break;
		case 'a':
			a->anchor = optarg;
			break;
		case 'h':
			printf("usage: %s\n", BILLING_USAGE);
			return VOXCTL_OK;
		default:
			return voxctl_bad_option(BILLING_USAGE, opt, argv);
		}
	}
	if (argc - optind != 1)
		return voxctl_usage_error(BILLING_USAGE,
		                          argc == optind ? "ACCOUNT is missing"
		                                         : "one ACCOUNT only");
	a->account = argv[optind];
	if (!vox_uuid_valid(a->account))
		return voxctl_usage_error(BILLING_USAGE,
		                          "ACCOUNT \"%s\" is not an account id",
		                          a->account);
	if (a->tax && !int_arg(a->tax, 0, 1000000))
		return voxctl_usage_error(BILLING_USAGE,
		                          "--tax-rate-ppm must be 0..1000000 "
		                          "(parts per million: 88750 is "
		                          "8.875 %%)");
	if (a->grace && !int_arg(a->grace, 0, 31))
		return voxctl_usage_error(BILLING_USAGE,
		                          "--grace-days must be 0..31");
	if (a->terms && !int_arg(a->terms, 0, 90))
		return voxctl_usage_error(BILLING_USAGE,
		                          "--terms-days must be 0..90");
	if (a->anchor && !int_arg(a->anchor, 1, 31))
		return voxctl_usage_error(BILLING_USAGE,
		                          "--anchor-day must be 1..31");
	if (a->plan && !plan_name_ok(a->plan))
		return voxctl_usage_error(BILLING_USAGE,
		                          "--dunning-plan \"%s\" is not a plan "
		                          "name ([a-z0-9_-], 1 to 64)",
		                          a->plan);
	return -1;
}

struct billing_change {
	const struct billing_args *a;
	PGresult *row;
	char problem[200]; /* a refusal to report (exit 1) */
};

/* clang-format off */
static const char settings_sql[] =
	"SELECT b.account_id, b.anchor_day, b.tax_rate_ppm, b.grace_days, "
	"b.payment_terms_days, b.dunning_plan, b.standing, "
	VOXCTL_TS("b.suspended_at") " AS suspended_at, "
	"b.credit_balance_micros, a.currency, a.timezone, "
	VOXCTL_TS("p.period_start") " AS current_period_start, "
	VOXCTL_TS("p.period_end") " AS current_period_end "
	"FROM billing_accounts b JOIN accounts a ON a.id = b.account_id, "
	"billing_period_of(now(), b.anchor_day, a.timezone) p "
	"WHERE b.account_id = $1";
/* clang-format on */

static int billing_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct billing_change *c = arg;
	const struct billing_args *a = c->a;
	const char *id[] = {a->account};
	const char *params[] = {a->account, a->tax,  a->grace,
	                        a->terms,   a->plan, a->anchor};
	PGresult *res = NULL;
	int rc;

	rc = vox_pg_exec(
	        pg,
	        "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1), "
	        "EXISTS (SELECT 1 FROM invoices WHERE account_id = "
	        "$1)",
	        1, id, &res, err);
	if (rc != 0)
		return rc;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		snprintf(c->problem, sizeof(c->problem), "no account %s",
		         a->account);
	else if (a->anchor && strcmp(PQgetvalue(res, 0, 1), "t") == 0)
		snprintf(c->problem, sizeof(c->problem),
		         "the account has invoices: its anchor day can no "
		         "longer change");
	PQclear(res);
	res = NULL;
	if (c->problem[0] == '\0' && a->plan) {
		const char *plan[] = {a->plan};

		rc = vox_pg_exec(pg,
		                 "SELECT 1 FROM dunning_plans WHERE name = $1",
		                 1, plan, &res, err);
		if (rc != 0)
			return rc;
		if (PQntuples(res) == 0)
			snprintf(c->problem, sizeof(c->problem),
			         "no dunning plan \"%s\"", a->plan);
		PQclear(res);
	}
	if (c->problem[0] != '\0')
		return vox_error_set(err, VOX_ERR_INVALID, false, "%s",
		                     c->problem);
	rc = vox_pg_exec(pg,
	                 "INSERT INTO billing_accounts (account_id) VALUES "
	                 "($1) ON CONFLICT (account_id) DO NOTHING",
	                 1, id, NULL, err);
	if (rc == 0)
		rc = vox_pg_exec(
		        pg,
		        "UPDATE billing_accounts SET tax_rate_ppm = "
		        "COALESCE($2::int, tax_rate_ppm), grace_days = "
		        "COALESCE($3::smallint, grace_days), "
		        "payment_terms_days "
		        "= COALESCE($4::smallint, payment_terms_days), "
		        "dunning_plan = COALESCE($5, dunning_plan), anchor_day "
		        "= COALESCE($6::smallint, anchor_day) WHERE account_id "
		        "= $1",
		        6, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_exec(pg, settings_sql, 1, id, &c->row, err);
	return rc;
}

int voxctl_billing(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	struct billing_args a = {0};
	struct billing_change c = {.a = &a};
	vox_error_t err = {0};
	vox_pg_t *pg;
	int rc = billing_read(argc, argv, &a);

	if (rc >= 0)
		return rc;
	if ((pg = voxctl_pg_open(cfg)) == NULL)
		return VOXCTL_FAILED;
	if (vox_pg_transaction(pg, billing_tx, &c, &err) != 0) {
		fprintf(stderr, "voxctl: %s\n",
		        c.problem[0] ? c.problem : err.message);
		rc = VOXCTL_FAILED;
	} else {
		rc = voxctl_print_record(c.row, true);
	}
	PQclear(c.row);
	vox_pg_destroy(pg);
	return rc;
}

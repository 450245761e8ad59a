/*
 * Number configuration commands (issue 12): each stores its section as
 * the number's next version, with a history row, in the inbox transaction.
 * A routing change is marked pending_carrier: the carrier sync loop pushes
 * it (latest version wins). The number must still be the account's and
 * active when the command is handled, else the operation fails.
 * Notification preferences replace the account's defaults (no versions).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provisioning.h"
#include "vox_json.h"
#include "vox_log.h"

/* The upsert for column col; value is the SET expression. The version is
 * past both the row's and the history's (a number sold again keeps its
 * old history rows). $1 number, $2 account, $3 config, $4 section,
 * $5 operation. */
#define CONFIG_UPSERT(col, value, carrier)                                     \
	"WITH n AS (SELECT country, id FROM numbers WHERE id = $1 AND "        \
	"account_id = $2), h AS (SELECT coalesce(max(version), 0) AS v FROM "  \
	"number_configuration_versions WHERE number_id = $1), up AS (INSERT "  \
	"INTO number_configurations AS c (account_id, number_country, "        \
	"number_id, " col ", version) SELECT $2, n.country, n.id, $3::jsonb, " \
	"h.v + 1 FROM n, h ON CONFLICT (number_id) DO UPDATE SET " col         \
	" = " value                                                            \
	", version = greatest(c.version, (SELECT v FROM h)) + 1" carrier       \
	" RETURNING version, " col ") INSERT INTO "                            \
	"number_configuration_versions (number_id, version, account_id, "      \
	"section, config, operation_id) SELECT $1, version, $2, $4, " col      \
	", $5 FROM up RETURNING version"

#define PENDING_CARRIER                                                        \
	", carrier_status = 'pending_carrier', carrier_next_at = now(), "      \
	"carrier_attempts = 0"

static const struct config_section {
	const char *type, *kind, *section, *stmt, *sql;
} sections[] = {
        {"vox.number.routing_update_requested", "number.routing.update",
         "routing", "prov_config_routing",
         CONFIG_UPSERT("call_forwarding", "EXCLUDED.call_forwarding",
                       PENDING_CARRIER)},
        {"vox.number.business_hours_update_requested",
         "number.business_hours.update", "business_hours", "prov_config_hours",
         CONFIG_UPSERT("business_hours", "EXCLUDED.business_hours", "")},
        /* A document without pin_hash keeps the current PIN. */
        {"vox.number.voicemail_update_requested", "number.voicemail.update",
         "voicemail", "prov_config_voicemail",
         CONFIG_UPSERT("voicemail",
                       "CASE WHEN EXCLUDED.voicemail ? 'pin_hash' THEN "
                       "EXCLUDED.voicemail ELSE EXCLUDED.voicemail || "
                       "jsonb_build_object('pin_hash', c.voicemail -> "
                       "'pin_hash') END",
                       "")},
};

/* The number, locked; 1 when the handler goes on, 0 when it recorded the
 * failure (not the account's, or not active). */
static int config_number(vox_pg_t *pg, const vox_message_t *msg,
                         const char *kind, char *e164, size_t e164len,
                         vox_error_t *err)
{
	const char *params[] = {vox_json_str(msg->data, "number_id"),
	                        msg->account_id};
	char reason[96];
	PGresult *res;
	int rc;

	rc = vox_pg_execp(pg, "prov_config_number",
	                  "SELECT e164, status FROM numbers WHERE id = $1 AND "
	                  "account_id = $2 FOR UPDATE",
	                  2, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return prov_fail(pg, msg, kind, "number_not_found",
		                 "no number of this account has this id", err);
	}
	snprintf(e164, e164len, "%s", PQgetvalue(res, 0, 0));
	if (strcmp(PQgetvalue(res, 0, 1), "active") != 0) {
		snprintf(reason, sizeof(reason), "the number is %s",
		         PQgetvalue(res, 0, 1));
		PQclear(res);
		return prov_fail(pg, msg, kind, "invalid_state", reason, err);
	}
	PQclear(res);
	return 1;
}

static int config_store(vox_pg_t *pg, const vox_message_t *msg,
                        const struct config_section *s, vox_error_t *err)
{
	static const char *const ids[] = {"operation_id", "number_id", NULL};
	const json_t *config = json_object_get(msg->data, "config");
	char e164[24], *text;
	PGresult *res;
	int rc, version;

	/* prov_need ran the section's validator (validate.c) */
	if ((rc = prov_need(pg, msg, ids, err)) != 0)
		return rc;
	rc = config_number(pg, msg, s->kind, e164, sizeof(e164), err);
	if (rc != 1)
		return rc;
	text = vox_json_dump(config);
	if (text == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	const char *params[] = {vox_json_str(msg->data, "number_id"),
	                        msg->account_id, text, s->section,
	                        vox_json_str(msg->data, "operation_id")};
	rc = vox_pg_execp(pg, s->stmt, s->sql, 5, params, &res, err);
	free(text);
	if (rc != 0)
		return rc;
	version = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	rc = prov_emit(pg, "number.configured", msg, e164,
	               json_pack("{s:s, s:s, s:s, s:i}", "phone_number", e164,
	                         "number_id", params[0], "section", s->section,
	                         "version", version),
	               err);
	if (rc != 0)
		return rc;
	return prov_done(pg, msg, s->kind,
	                 json_pack("{s:s, s:s, s:s, s:i}", "number_id",
	                           params[0], "phone_number", e164, "section",
	                           s->section, "version", version),
	                 err);
}

int prov_configure(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                   vox_error_t *err)
{
	(void)ctx;
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strcmp(sections[i].type, msg->type) == 0)
			return config_store(pg, msg, &sections[i], err);
	return vox_error_set(err, VOX_ERR_INVALID, false,
	                     "no configuration section for %s", msg->type);
}

int prov_preferences(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                     vox_error_t *err)
{
	static const char *const ids[] = {"operation_id", NULL};
	const json_t *prefs = json_object_get(msg->data, "preferences");
	const char *params[2] = {msg->account_id, NULL};
	char *text;
	int rc;

	(void)ctx;
	/* prov_need ran prov_preferences_validate */
	if ((rc = prov_need(pg, msg, ids, err)) != 0)
		return rc;
	text = vox_json_dump(prefs);
	if (text == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	params[1] = text;
	rc = vox_pg_execp(pg, "prov_preferences_clear",
	                  "DELETE FROM notification_preferences WHERE "
	                  "account_id = $1 AND user_id IS NULL",
	                  1, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(
		        pg, "prov_preferences_set",
		        "INSERT INTO notification_preferences (account_id, "
		        "event_type, channels) SELECT $1, p.key, ARRAY(SELECT "
		        "c "
		        "FROM jsonb_array_elements_text(p.value) WITH "
		        "ORDINALITY AS t (c, i) ORDER BY i) FROM "
		        "jsonb_each($2::jsonb) p",
		        2, params, NULL, err);
	free(text);
	if (rc != 0)
		return rc;
	return prov_done(pg, msg, "notification_preferences.update",
	                 json_pack("{s:I}", "preferences",
	                           (json_int_t)json_object_size(prefs)),
	                 err);
}

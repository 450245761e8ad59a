/*
 * The provisioning worker's carrier sync (workers/provisioning/
 * config_sync.c): which forwarding a stored call_forwarding document
 * becomes on the carrier. The push loop itself is tested end to end in
 * tests/integration/test_config_sync.c.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../workers/provisioning/provisioning.h"

static const struct {
	const char *doc;
	bool enabled;
	const char *forwards_to;
} rows[] = {
        {"{}", false, NULL},
        {"{\"forward_to\": \"+14155550100\"}", true, "+14155550100"},
        {"{\"primary_destination\": \"+14155550101\", \"enabled\": true, "
         "\"timeout_s\": 20, \"failover_destination\": \"sip:a@b.example\"}",
         true, "+14155550101"},
        {"{\"primary_destination\": \"sip:desk@pbx.example.com\"}", true,
         "sip:desk@pbx.example.com"},
        {"{\"primary_destination\": \"+14155550101\", \"enabled\": false}",
         false, NULL},
        {"{\"primary_destination\": null, \"enabled\": true}", false, NULL},
        {"{\"primary_destination\": \"\", \"enabled\": true}", false, NULL},
        {"{\"primary_destination\": \"+14155550102\", \"forward_to\": "
         "\"+14155550100\"}",
         true, "+14155550102"},
};

Test(config_sync, forwarding_of_a_stored_document)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		json_t *doc = json_loads(rows[i].doc, 0, NULL);
		vox_carrier_forwarding_t fwd;

		cr_assert_not_null(doc, "row %zu", i);
		cr_assert_eq(prov_sync_forwarding(doc, &fwd), 0);
		cr_assert_eq(fwd.enabled, rows[i].enabled, "row %zu: %s", i,
		             rows[i].doc);
		cr_assert_not(fwd.on_failure);
		if (rows[i].forwards_to == NULL)
			cr_assert_null(fwd.forwards_to, "row %zu", i);
		else
			cr_assert_str_eq(fwd.forwards_to, rows[i].forwards_to,
			                 "row %zu", i);
		json_decref(doc);
	}
}

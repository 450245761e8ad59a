/*
 * Tests of vox_inflight_seen: what the marks a dead worker left say about
 * each message of a new batch (the crash guard cuts batches from it).
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include "vox_inflight.h"

static void msg(vox_batch_msg_t *m, const char *topic, int partition,
                long long offset)
{
	memset(m, 0, sizeof(*m));
	m->topic = topic;
	m->partition = partition;
	m->offset = offset;
}

Test(inflight, seen_counts_crashes_and_lone_crashes)
{
	json_t *dead = json_loads(
	        "[{\"m\":1,\"t\":\"a\",\"p\":0,\"f\":10,\"l\":20,\"a\":1},"
	        "{\"m\":2,\"t\":\"a\",\"p\":0,\"f\":12,\"l\":13,\"a\":3},"
	        "{\"m\":3,\"t\":\"a\",\"p\":0,\"f\":12,\"l\":12,\"a\":2},"
	        "{\"m\":4,\"t\":\"b\",\"p\":0,\"f\":0,\"l\":99,\"a\":5}]",
	        0, NULL);
	vox_batch_msg_t m[6];
	vox_inflight_seen_t seen[6];

	cr_assert_not_null(dead);
	msg(&m[0], "a", 0, 9);  /* before every mark */
	msg(&m[1], "a", 0, 10); /* the batch's mark only */
	msg(&m[2], "a", 0, 12); /* three marks, one of it alone */
	msg(&m[3], "a", 0, 13); /* a piece of two */
	msg(&m[4], "a", 1, 12); /* other partition */
	msg(&m[5], "b", 0, 12); /* other topic */
	cr_assert_eq(vox_inflight_seen(dead, m, 6, seen), 4);
	cr_assert_eq(seen[0].crashes, 0);
	cr_assert_eq(seen[1].crashes, 1);
	cr_assert_eq(seen[1].alone, 0);
	cr_assert_eq(seen[2].crashes, 3);
	cr_assert_eq(seen[2].alone, 2);
	cr_assert_eq(seen[3].crashes, 3);
	cr_assert_eq(seen[3].alone, 0);
	cr_assert_eq(seen[4].crashes, 0);
	cr_assert_eq(seen[5].crashes, 5);
	json_decref(dead);
}

/* The piece that finished a mark's offsets lets it go, even when the
 * batch goes on (and may crash) after. */
Test(inflight, finished_marks_are_taken_out)
{
	json_t *dead = json_loads(
	        "[{\"m\":1,\"t\":\"a\",\"p\":0,\"f\":0,\"l\":2,\"a\":1},"
	        "{\"m\":1,\"t\":\"a\",\"p\":1,\"f\":0,\"l\":1,\"a\":1},"
	        "{\"m\":2,\"t\":\"a\",\"p\":0,\"f\":3,\"l\":9,\"a\":1}]",
	        0, NULL);
	vox_batch_msg_t m[6];
	json_t *done;

	msg(&m[0], "a", 0, 0);
	msg(&m[1], "a", 0, 1);
	msg(&m[2], "a", 0, 2);
	msg(&m[3], "a", 1, 0);
	msg(&m[4], "a", 1, 1);
	msg(&m[5], "a", 0, 3);
	cr_assert_null(vox_inflight_finished(dead, m, 6, 2));
	done = vox_inflight_finished(dead, m, 6, 3);
	cr_assert_eq(json_array_size(done), 1); /* partition 0, up to 2 */
	json_decref(done);
	done = vox_inflight_finished(dead, m, 6, 6);
	cr_assert_eq(json_array_size(done), 1); /* partition 1; not mark 2 */
	cr_assert_eq(json_array_size(dead), 1); /* reaches past the batch */
	json_decref(done);
	json_decref(dead);
}

/*
 * One thread LISTENing on PostgreSQL for what the ingress must react to:
 *   vox_keys      a key changed: drop it from the credential cache
 *   vox_accounts  an account changed status: drop its credentials
 *   vox_carriers  a carrier credential changed: drop it from the carrier
 *                 credential cache (carrier_keys.c)
 *   vox_ops       an operation finished: answer requests waiting on it
 *                 (Prefer: wait=N)
 *   vox_routing   a number's configuration or status changed: reload it
 *                 into the routing table (routing.c)
 * Waiting requests are parked (suspended), never a thread each; a request
 * whose operation finished before it was parked is caught by one status
 * query when it is registered. After a reconnect the thread LISTENs again
 * and drops the whole credential caches and reloads the whole routing table
 * (it may have missed a change).
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "carrier_keys.h"
#include "ingress.h"
#include "routing.h"
#include "vox_log.h"
#include "vox_time.h"

#define MAX_WAITERS 4096

struct waiter {
	vox_http_req_t *req;
	ingress_req_t *ir;
	vox_http_handler_fn then;
	int64_t deadline_ms;
	bool checked; /* status looked up once after registration */
};

struct listener {
	ingress_t *in;
	vox_pg_t *pg;
	pthread_t thread;
	pthread_mutex_t lock;
	struct waiter waiters[MAX_WAITERS];
	int nwaiters;
	volatile bool stop;
};

/* Resumes and removes waiters for op_id (NULL: those past their
 * deadline, or all when stopping). Called with the lock held. */
static void release_waiters(struct listener *l, const char *op_id, bool all)
{
	int64_t now = vox_mono_ms();

	for (int i = 0; i < l->nwaiters;) {
		struct waiter *w = &l->waiters[i];
		bool go = all || (op_id ? strcmp(w->ir->op_id, op_id) == 0
		                        : now >= w->deadline_ms);

		if (!go) {
			i++;
			continue;
		}
		vox_http_resume(w->req, w->then);
		l->waiters[i] = l->waiters[--l->nwaiters];
	}
}

/* Operations finished before their waiters were registered. */
static void check_new_waiters(struct listener *l)
{
	char ids[MAX_WAITERS][VOX_UUID_STRLEN];
	int n = 0;

	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < l->nwaiters; i++)
		if (!l->waiters[i].checked) {
			l->waiters[i].checked = true;
			memcpy(ids[n++], l->waiters[i].ir->op_id,
			       VOX_UUID_STRLEN);
		}
	pthread_mutex_unlock(&l->lock);
	for (int i = 0; i < n; i++) {
		const char *params[] = {ids[i]};
		PGresult *res;
		vox_error_t err;

		if (vox_pg_execp(l->pg, "listener_op_done",
		                 "SELECT 1 FROM operations WHERE id = $1 AND "
		                 "status IN ('completed', 'failed')",
		                 1, params, &res, &err) != 0)
			continue;
		if (PQntuples(res) == 1) {
			pthread_mutex_lock(&l->lock);
			release_waiters(l, ids[i], false);
			pthread_mutex_unlock(&l->lock);
		}
		PQclear(res);
	}
}

static void handle_notice(struct listener *l, const PGnotify *note)
{
	if (strcmp(note->relname, "vox_keys") == 0) {
		key_cache_forget(l->in->keys, note->extra);
	} else if (strcmp(note->relname, "vox_carriers") == 0) {
		carrier_keys_forget(l->in->carrier_keys, note->extra);
	} else if (strcmp(note->relname, "vox_accounts") == 0) {
		key_cache_forget_account(l->in->keys, note->extra);
	} else if (strcmp(note->relname, "vox_routing") == 0) {
		vox_error_t err;

		if (routing_reload(l->in->routing, l->pg, note->extra, &err) !=
		    0)
			vox_log(VOX_LOG_WARN,
			        "cannot reload a number's routing", "number_id",
			        note->extra, "error", err.message, NULL);
	} else if (strcmp(note->relname, "vox_ops") == 0) {
		pthread_mutex_lock(&l->lock);
		release_waiters(l, note->extra, false);
		pthread_mutex_unlock(&l->lock);
	}
}

static int listen_all(struct listener *l)
{
	vox_error_t err;

	if (vox_pg_connect(l->pg, 0, &err) != 0 ||
	    vox_pg_exec_script(l->pg,
	                       "LISTEN vox_keys; LISTEN vox_accounts; "
	                       "LISTEN vox_ops; LISTEN vox_routing; "
	                       "LISTEN vox_carriers",
	                       &err) != 0 ||
	    routing_load_all(l->in->routing, l->pg, &err) != 0) {
		vox_log(VOX_LOG_WARN, "listener cannot LISTEN", "error",
		        err.message, NULL);
		return -1;
	}
	/* Changes made while we were not listening are unknown. */
	key_cache_forget_account(l->in->keys, NULL);
	carrier_keys_forget_all(l->in->carrier_keys);
	return 0;
}

static void *listener_loop(void *arg)
{
	struct listener *l = arg;
	unsigned listened_on = 0;

	while (!l->stop) {
		PGconn *conn = vox_pg_conn(l->pg);
		struct pollfd pfd;
		PGnotify *note;

		if (conn == NULL || vox_pg_connects(l->pg) != listened_on) {
			if (listen_all(l) != 0) {
				poll(NULL, 0, 200);
				continue;
			}
			listened_on = vox_pg_connects(l->pg);
			conn = vox_pg_conn(l->pg);
		}
		check_new_waiters(l);
		pfd.fd = PQsocket(conn);
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 20) > 0 && !PQconsumeInput(conn)) {
			vox_pg_exec(l->pg, "SELECT 1", 0, NULL, NULL, NULL);
			continue; /* broken: the next round reconnects */
		}
		while ((note = PQnotifies(conn)) != NULL) {
			handle_notice(l, note);
			PQfreemem(note);
		}
		pthread_mutex_lock(&l->lock);
		release_waiters(l, NULL, false); /* deadlines */
		pthread_mutex_unlock(&l->lock);
	}
	return NULL;
}

struct listener *listener_new(ingress_t *in)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->in = in;
	l->pg = vox_pg_new(in->cfg->pg_url);
	pthread_mutex_init(&l->lock, NULL);
	if (l->pg == NULL ||
	    pthread_create(&l->thread, NULL, listener_loop, l) != 0) {
		vox_pg_destroy(l->pg);
		free(l);
		return NULL;
	}
	return l;
}

void listener_destroy(struct listener *l)
{
	if (l == NULL)
		return;
	l->stop = true;
	pthread_join(l->thread, NULL);
	pthread_mutex_lock(&l->lock);
	release_waiters(l, NULL, true);
	pthread_mutex_unlock(&l->lock);
	vox_pg_destroy(l->pg);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

void listener_wait_for(struct listener *l, vox_http_req_t *req,
                       ingress_req_t *ir, vox_http_handler_fn then)
{
	vox_http_suspend(req);
	pthread_mutex_lock(&l->lock);
	if (l->nwaiters == MAX_WAITERS || l->stop) {
		pthread_mutex_unlock(&l->lock);
		vox_http_resume(req, then); /* full: answer 202 now */
		return;
	}
	l->waiters[l->nwaiters++] = (struct waiter){
	        req, ir, then, vox_mono_ms() + ir->wait_s * 1000L, false};
	pthread_mutex_unlock(&l->lock);
}

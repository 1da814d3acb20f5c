/*
 * router_ticker: the timer thread -- pops due timers from cc:timers (ring timeout / RONA,
 * wrap-up end, max wait -> overflow or timeout, tier widening, ring-progressive step) and
 * handles each through the normal scripts (router_engine_timer).
 *
 * Popping is one script (ZRANGEBYSCORE + ZREM), so with several instances each timer is handled
 * by exactly one of them. A timer popped by an instance that dies before handling it is lost
 * with it (a window of one tick): the offer it guarded still ends by the agent's no_answer
 * fact from sip-edge, and a rebuild re-arms what it restores.
 * A tick handles at most `batch` timers and runs again at once while more are due, else sleeps
 * period_ms. Tests drive time by hand with router_ticker_tick().
 *
 * Thread-safety: _start/_stop from one thread; the ticker owns its engine (own connections).
 */
#ifndef ROUTER_TICKER_H
#define ROUTER_TICKER_H

#include <stddef.h>
#include <stdint.h>

#include "router_engine.h"

/* Timers popped per script call. A pop holds Redis for ~17 us per timer (one lease each), and
 * every route waits behind it: 256 stalled Redis for 4.4 ms when RONAs came in a burst (SLOWLOG
 * during bench-router's steady phase). A full batch is followed by the next at once. */
#define ROUTER_TICKER_BATCH 32

typedef struct router_ticker router_ticker;

/* Starts the thread with its own engine (cfg as for router_engine_new). period_ms 1..60000.
 * Once a minute it also purges closed interactions older than closed_keep_s from PostgreSQL
 * (router_live_purge). NULL (logged) on failure. */
router_ticker *router_ticker_start(const struct router_engine_config *cfg, long period_ms,
                                   size_t batch, long closed_keep_s);
/* Stops after the current tick, joins, frees. NULL is a no-op. */
void router_ticker_stop(router_ticker *t);

/* One tick on engine e at now_ms: pops up to max due timers and handles them. *handled (may be
 * NULL) gets how many were popped. Returns 0, or the first failure (the remaining popped timers
 * are still handled). */
int router_ticker_tick(router_engine *e, int64_t now_ms, size_t max, size_t *handled);

#endif

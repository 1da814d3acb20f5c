/*
 * Integration tests for services/sip-edge/sipedge_store.c against the stack's PostgreSQL: the
 * lookups of the call and REGISTER paths, the binding rules (refresh order, expiry, removal) and
 * the queued callbacks.
 * Every test uses its own tenant/domain (itest_unique), so runs never collide in the shared
 * "sipedge" schema.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "sipedge_store.h"

static sipedge_store *ss_store;
static char ss_tenant[64], ss_domain[96], ss_did[24];

static void ss_setup(void)
{
    char dir[512];
    unsigned long long r;

    itest_unique(ss_tenant, sizeof(ss_tenant), "ss");
    snprintf(ss_domain, sizeof(ss_domain), "%s.example", ss_tenant);
    ss_store = sipedge_store_new(itest_env("CC_PG_DSN"), 2, 5000);
    cr_assert_not_null(ss_store, "expected a store on CC_PG_DSN");
    snprintf(dir, sizeof(dir), "%s/services/sip-edge/migrations", itest_env("CC_TEST_TOP"));
    cr_assert_eq(sipedge_store_migrate(ss_store, dir), 0, "expected the migrations of %s", dir);
    getrandom(&r, sizeof(r), 0);
    snprintf(ss_did, sizeof(ss_did), "+99%016llu", r % 10000000000000000ULL);
}

static void ss_teardown(void)
{
    sipedge_store_free(ss_store);
}

TestSuite(sipedge_store, .init = ss_setup, .fini = ss_teardown, .timeout = 30);

static void ss_credential(const char *username, const char *agent)
{
    struct sipedge_credential_row row = {0};

    snprintf(row.c.tenant, sizeof(row.c.tenant), "%s", ss_tenant);
    snprintf(row.c.domain, sizeof(row.c.domain), "%s", ss_domain);
    snprintf(row.c.username, sizeof(row.c.username), "%s", username);
    snprintf(row.c.agent_id, sizeof(row.c.agent_id), "%s", agent);
    cr_assert_eq(sipedge_digest_ha1(username, ss_domain, "secret-pass", row.c.ha1), 0);
    cr_assert_eq(sipedge_store_credential_create(ss_store, &row), 0,
                 "expected credential '%s' created", username);
    cr_assert_eq(row.version, 1, "expected version 1 on create");
}

static struct sipedge_binding ss_binding(const char *username, const char *contact,
                                         const char *call_id, uint32_t cseq, int64_t expires_ms)
{
    struct sipedge_binding b = {.cseq = cseq, .expires_at_ms = expires_ms};

    snprintf(b.tenant, sizeof(b.tenant), "%s", ss_tenant);
    snprintf(b.agent_id, sizeof(b.agent_id), "a-%s", username);
    snprintf(b.domain, sizeof(b.domain), "%s", ss_domain);
    snprintf(b.username, sizeof(b.username), "%s", username);
    snprintf(b.contact, sizeof(b.contact), "%s", contact);
    snprintf(b.call_id, sizeof(b.call_id), "%s", call_id);
    b.updated_at_ms = expires_ms - 3600 * 1000;
    snprintf(b.source, sizeof(b.source), "127.0.0.1:5062");
    snprintf(b.transport, sizeof(b.transport), "udp");
    return b;
}

struct ss_seen {
    int n;
    char contacts[8][SIPEDGE_URI_MAX + 1];
};

static void ss_collect(void *ctx, const struct sipedge_binding *b)
{
    struct ss_seen *s = ctx;

    if (s->n < 8)
        snprintf(s->contacts[s->n++], sizeof(s->contacts[0]), "%s", b->contact);
}

Test(sipedge_store, finds_a_credential_by_domain_case_insensitively)
{
    struct sipedge_credential c;
    char upper[96], ha1[SIPEDGE_DIGEST_HEX_LEN + 1];

    ss_credential("1001", "a-1001");
    snprintf(upper, sizeof(upper), "%s", ss_domain);
    for (char *p = upper; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    cr_assert_eq(sipedge_store_credential_get(ss_store, upper, "1001", &c), 0);
    sipedge_digest_ha1("1001", ss_domain, "secret-pass", ha1);
    cr_assert_str_eq(c.ha1, ha1, "expected HA1 = MD5(user:domain:password)");
    cr_assert_str_eq(c.tenant, ss_tenant);
    cr_assert_str_eq(c.agent_id, "a-1001");
    cr_assert_eq(sipedge_store_credential_get(ss_store, ss_domain, "1002", &c), -ENOENT,
                 "expected an unknown user to be -ENOENT");
}

Test(sipedge_store, finds_a_did_and_refuses_it_twice)
{
    struct sipedge_did_row row = {0};
    struct sipedge_did d;

    snprintf(row.d.number, sizeof(row.d.number), "%s", ss_did);
    snprintf(row.d.tenant, sizeof(row.d.tenant), "%s", ss_tenant);
    snprintf(row.d.queue_id, sizeof(row.d.queue_id), "sales");
    row.d.priority = 7;
    cr_assert_eq(sipedge_store_did_create(ss_store, &row), 0);
    cr_assert_eq(sipedge_store_did_get(ss_store, ss_did, &d), 0);
    cr_assert_str_eq(d.queue_id, "sales");
    cr_assert_eq(d.priority, 7);
    cr_assert_eq(sipedge_store_did_create(ss_store, &row), -EEXIST,
                 "expected a number to belong to one tenant");
    cr_assert_eq(sipedge_store_did_get(ss_store, "+0000", &d), -ENOENT);
}

Test(sipedge_store, keeps_several_contacts_newest_first_and_refuses_old_cseq)
{
    int64_t now = 1800000000000LL;
    struct sipedge_binding a =
        ss_binding("2001", "sip:2001@10.0.0.1:5060", "cid-a", 5, now + 60000);
    struct sipedge_binding b =
        ss_binding("2001", "sip:2001@10.0.0.2:5060", "cid-b", 1, now + 90000);
    struct ss_seen seen = {0};

    ss_credential("2001", "a-2001");
    b.updated_at_ms = a.updated_at_ms + 1000;
    cr_assert_eq(sipedge_store_binding_put(ss_store, &a), 0);
    cr_assert_eq(sipedge_store_binding_put(ss_store, &b), 0);
    cr_assert_eq(sipedge_store_binding_put(ss_store, &a), -EALREADY,
                 "expected the same Call-ID and CSeq refused");
    a.cseq = 6;
    a.updated_at_ms = b.updated_at_ms + 1000;
    cr_assert_eq(sipedge_store_binding_put(ss_store, &a), 0, "expected a higher CSeq accepted");
    cr_assert_eq(sipedge_store_bindings_of(ss_store, ss_domain, "2001", now, ss_collect, &seen), 2);
    cr_assert_str_eq(seen.contacts[0], a.contact, "expected the newest refresh first");
    cr_assert_str_eq(seen.contacts[1], b.contact);
    memset(&seen, 0, sizeof(seen));
    cr_assert_eq(
        sipedge_store_bindings_of(ss_store, ss_domain, "2001", now + 70000, ss_collect, &seen), 1,
        "expected the contact expired at now+60 s left out");
    cr_assert_eq(sipedge_store_binding_remove(ss_store, ss_domain, "2001", b.contact), 0);
    cr_assert_eq(sipedge_store_bindings_of(ss_store, ss_domain, "2001", now, NULL, NULL), 1);
    cr_assert_eq(sipedge_store_binding_remove(ss_store, ss_domain, "2001", NULL), 0);
    cr_assert_eq(sipedge_store_bindings_of(ss_store, ss_domain, "2001", now, NULL, NULL), 0);
    cr_assert_eq(sipedge_store_binding_remove(ss_store, ss_domain, "2001", NULL), 0,
                 "expected removing nothing to succeed");
}

Test(sipedge_store, expires_bindings_and_reports_each)
{
    /* far in the past, so other tests' live bindings are never swept by this one */
    int64_t past = 1000000000000LL;
    struct sipedge_binding a = ss_binding("3001", "sip:3001@10.0.0.1", "cid", 1, past);
    struct sipedge_binding b = ss_binding("3001", "sip:3001@10.0.0.2", "cid2", 1, past + 1);
    struct ss_seen seen = {0};
    int n, total = 0;

    ss_credential("3001", "a-3001");
    cr_assert_eq(sipedge_store_binding_put(ss_store, &a), 0);
    cr_assert_eq(sipedge_store_binding_put(ss_store, &b), 0);
    /* other tests may have left expired rows too: sweep until ours are gone */
    while ((n = sipedge_store_bindings_expire(ss_store, past + 1, 100, ss_collect, &seen)) > 0)
        total += n;
    cr_assert_eq(n, 0, "expected the sweep to end without an error");
    cr_assert_geq(total, 2, "expected both of our expired bindings deleted");
    cr_assert_eq(sipedge_store_bindings_of(ss_store, ss_domain, "3001", 0, NULL, NULL), 0);
}

Test(sipedge_store, refuses_a_binding_without_a_credential)
{
    struct sipedge_binding a =
        ss_binding("nobody", "sip:nobody@10.0.0.1", "cid", 1, 1800000000000LL);

    cr_assert_eq(sipedge_store_binding_put(ss_store, &a), -EINVAL,
                 "expected the foreign key to refuse a binding of an unknown AOR");
}

Test(sipedge_store, drops_bindings_with_their_credential_and_moves_them_with_the_agent)
{
    int64_t now = 1800000000000LL;
    struct sipedge_binding a = ss_binding("4001", "sip:4001@10.0.0.1", "cid", 1, now + 60000);
    struct sipedge_credential_row row;
    struct sipedge_binding *list;
    size_t n;

    ss_credential("4001", "a-4001");
    cr_assert_eq(sipedge_store_binding_put(ss_store, &a), 0);
    cr_assert_eq(sipedge_store_credential_update(ss_store, ss_tenant, ss_domain, "4001", "a-9",
                                                 NULL, 1, &row),
                 0);
    cr_assert_eq(row.version, 2);
    cr_assert_eq(sipedge_store_credential_update(ss_store, ss_tenant, ss_domain, "4001", "a-9",
                                                 NULL, 1, &row),
                 -ESTALE, "expected version 1 stale after the update");
    cr_assert_eq(sipedge_store_binding_list(ss_store, ss_tenant, "a-9", now, NULL, NULL, NULL, 10,
                                            &list, &n),
                 0);
    cr_assert_eq(n, 1, "expected the binding to follow the credential's new agent");
    free(list);
    cr_assert_eq(sipedge_store_credential_delete(ss_store, "other-tenant", ss_domain, "4001", 0),
                 -ENOENT, "expected another tenant not to see the credential");
    cr_assert_eq(sipedge_store_credential_delete(ss_store, ss_tenant, ss_domain, "4001", 0), 0);
    cr_assert_eq(sipedge_store_bindings_of(ss_store, ss_domain, "4001", now, NULL, NULL), 0,
                 "expected the bindings deleted with the credential");
}

/* The lookup cache: a second store (another instance) keeps its cached miss for its TTL, while
 * the writing store sees its own create and delete at once. */
Test(sipedge_store, caches_lookups_for_the_ttl_and_forgets_its_own_writes_at_once)
{
    sipedge_store *other = sipedge_store_new_cached(itest_env("CC_PG_DSN"), 1, 5000, 60000);
    struct sipedge_did_row row = {0};
    struct sipedge_did d;

    cr_assert_not_null(other, "expected a second store");
    snprintf(row.d.number, sizeof(row.d.number), "%s", ss_did);
    snprintf(row.d.tenant, sizeof(row.d.tenant), "%s", ss_tenant);
    snprintf(row.d.queue_id, sizeof(row.d.queue_id), "sales");
    cr_assert_eq(sipedge_store_did_get(other, ss_did, &d), -ENOENT, "expected no such number yet");
    cr_assert_eq(sipedge_store_did_get(ss_store, ss_did, &d), -ENOENT,
                 "expected no such number yet");
    cr_assert_eq(sipedge_store_did_create(ss_store, &row), 0, "expected the number created");
    cr_assert_eq(sipedge_store_did_get(other, ss_did, &d), -ENOENT,
                 "expected the other instance to keep its cached miss within its TTL");
    cr_assert_eq(sipedge_store_did_get(ss_store, ss_did, &d), 0,
                 "expected the writing instance to see its own create at once");
    cr_assert_str_eq(d.queue_id, "sales");
    cr_assert_eq(sipedge_store_did_delete(ss_store, ss_tenant, ss_did, 0), 0);
    cr_assert_eq(sipedge_store_did_get(ss_store, ss_did, &d), -ENOENT,
                 "expected the writing instance to forget the number at once");
    sipedge_store_free(other);
}

/* A callback is recorded once (a second put is -EALREADY), claimed by its own instance with
 * every field, follows an overflow to another queue, moves to the instance that claims it from
 * the first (once: a second claim finds nothing), is seen to exist by anyone, and is gone once
 * deleted. */
Test(sipedge_store, records_moves_and_forgets_a_callback)
{
    struct sipedge_callback cb = {.priority = 7, .created_ms = 1795600000123, .at_ms = 0}, *rows;
    char inst[64], other[64];
    const char *ids[2];
    bool exists[2];
    size_t n;

    itest_unique(inst, sizeof(inst), "ssinst");
    itest_unique(other, sizeof(other), "ssinst");
    itest_unique(cb.interaction_id, sizeof(cb.interaction_id), "ssix");
    snprintf(cb.tenant, sizeof(cb.tenant), "%s", ss_tenant);
    snprintf(cb.queue_id, sizeof(cb.queue_id), "q1");
    snprintf(cb.number, sizeof(cb.number), "+4915112345678");
    snprintf(cb.caller, sizeof(cb.caller), "+4917612345678");
    snprintf(cb.dialled, sizeof(cb.dialled), "%s", ss_did);
    snprintf(cb.host, sizeof(cb.host), "127.0.0.1:5060");
    snprintf(cb.instance, sizeof(cb.instance), "%s", inst);
    cb.at_ms = 1795600800000;
    cr_assert_eq(sipedge_store_callback_put(ss_store, &cb), 0);
    cr_assert_eq(sipedge_store_callback_put(ss_store, &cb), -EALREADY, "expected one row");
    cr_assert_eq(sipedge_store_callbacks_claim(ss_store, other, other, &rows, &n), 0);
    cr_assert_eq(n, 0, "expected another instance to see none");
    cr_assert_eq(sipedge_store_callback_moved(ss_store, cb.interaction_id, "q2"), 0);
    cr_assert_eq(sipedge_store_callbacks_claim(ss_store, inst, inst, &rows, &n), 0);
    cr_assert_eq(n, 1, "expected the instance's callback");
    cr_assert_str_eq(rows[0].interaction_id, cb.interaction_id);
    cr_assert_str_eq(rows[0].queue_id, "q2", "expected the overflow's queue");
    cr_assert_str_eq(rows[0].number, cb.number);
    cr_assert_str_eq(rows[0].caller, cb.caller);
    cr_assert_str_eq(rows[0].dialled, cb.dialled);
    cr_assert_str_eq(rows[0].host, cb.host);
    cr_assert_str_eq(rows[0].instance, inst);
    cr_assert_eq(rows[0].priority, 7);
    cr_assert_eq(rows[0].created_ms, cb.created_ms);
    cr_assert_eq(rows[0].at_ms, cb.at_ms);
    free(rows);
    cr_assert_eq(sipedge_store_callbacks_claim(ss_store, inst, other, &rows, &n), 0);
    cr_assert_eq(n, 1, "expected the callback taken over");
    cr_assert_str_eq(rows[0].instance, other);
    free(rows);
    cr_assert_eq(sipedge_store_callbacks_claim(ss_store, inst, other, &rows, &n), 0);
    cr_assert_eq(n, 0, "expected a second takeover to find nothing");
    ids[0] = cb.interaction_id;
    ids[1] = "ss-no-such-callback";
    cr_assert_eq(sipedge_store_callbacks_exist(ss_store, ids, 2, exists), 0);
    cr_assert(exists[0] && !exists[1], "expected only the recorded callback to exist");
    cr_assert_eq(sipedge_store_callback_delete(ss_store, cb.interaction_id), 0);
    cr_assert_eq(sipedge_store_callbacks_claim(ss_store, other, other, &rows, &n), 0);
    cr_assert_eq(n, 0, "expected the callback gone");
    cr_assert_eq(sipedge_store_callbacks_exist(ss_store, ids, 2, exists), 0);
    cr_assert(!exists[0], "expected the deleted callback not to exist");
}

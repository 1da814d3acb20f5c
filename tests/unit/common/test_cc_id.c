/* Unit tests for common/cc_id.c: UUIDv7 format, order and validation. */
#include <criterion/criterion.h>
#include <errno.h>
#include <criterion/parameterized.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cc_id.h"
#include "cc_time.h"

TestSuite(cc_id);

static int hexval(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* The 48-bit unix ms of a UUIDv7 string. */
static int64_t uuid_ms(const char *u)
{
    int64_t ms = 0;

    for (int i = 0; i < 13; i++) {
        if (u[i] != '-')
            ms = ms * 16 + hexval(u[i]);
    }
    return ms;
}

Test(cc_id, generates_canonical_lowercase_version_7_ids)
{
    char id[37];
    int64_t before = cc_time_now_ms();

    cr_assert_eq(cc_uuid_v7(id), 0);
    int64_t after = cc_time_now_ms();
    cr_assert_eq(strlen(id), 36, "expected 36 characters, got '%s'", id);
    cr_assert(cc_uuid_valid(id), "expected '%s' to be a valid uuid", id);
    cr_assert_eq(strspn(id, "0123456789abcdef-"), 36, "expected lowercase hex, got '%s'", id);
    cr_assert_eq(id[14], '7', "expected version nibble 7 in '%s'", id);
    cr_assert(strchr("89ab", id[19]) != NULL, "expected RFC variant 10xx in '%s'", id);
    int64_t ms = uuid_ms(id);
    cr_assert(ms >= before && ms <= after + 1, "expected timestamp %lld within [%lld, %lld]",
              (long long)ms, (long long)before, (long long)after);
}

Test(cc_id, ids_of_one_process_sort_in_generation_order)
{
    enum { N = 20000 };
    char(*ids)[37] = calloc(N, 37);

    cr_assert_not_null(ids);
    for (int i = 0; i < N; i++)
        cr_assert_eq(cc_uuid_v7(ids[i]), 0);
    for (int i = 1; i < N; i++)
        cr_assert(strcmp(ids[i - 1], ids[i]) < 0, "expected '%s' < '%s' (ids %d and %d)",
                  ids[i - 1], ids[i], i - 1, i);
    free(ids);
}

struct gen_ctx {
    char ids[5000][37];
};

static void *generate_many(void *arg)
{
    struct gen_ctx *ctx = arg;

    for (int i = 0; i < 5000; i++)
        cc_uuid_v7(ctx->ids[i]);
    return NULL;
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

Test(cc_id, threads_never_generate_the_same_id, .timeout = 20)
{
    enum { T = 4, PER = 5000 };
    struct gen_ctx *ctx = calloc(T, sizeof(*ctx));
    pthread_t th[T];

    cr_assert_not_null(ctx);
    for (int i = 0; i < T; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, generate_many, &ctx[i]), 0);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    /* each thread's ids ascend; all of them together are distinct */
    for (int t = 0; t < T; t++)
        for (int i = 1; i < PER; i++)
            cr_assert(strcmp(ctx[t].ids[i - 1], ctx[t].ids[i]) < 0, "expected ascending ids");
    qsort(ctx, (size_t)T * PER, 37, cmp_ids);
    char(*all)[37] = (char(*)[37])ctx;
    for (int i = 1; i < T * PER; i++)
        cr_assert(strcmp(all[i - 1], all[i]) != 0, "expected unique ids, '%s' repeats", all[i]);
    free(ctx);
}

/* Inline arrays, not pointers: Criterion hands parameters to a separate worker process. */
struct uuid_case {
    char text[48];
    bool valid;
};

ParameterizedTestParameters(cc_id, validates_the_canonical_form)
{
    static struct uuid_case cases[] = {
        {"0190b4c2-7e1a-7c3d-8a9b-0123456789ab", true},
        {"0190B4C2-7E1A-7C3D-8A9B-0123456789AB", true},
        {"00000000-0000-0000-0000-000000000000", true},
        {"0190b4c2-7e1a-7c3d-8a9b-0123456789a", false},
        {"0190b4c2-7e1a-7c3d-8a9b-0123456789abc", false},
        {"0190b4c27e1a7c3d8a9b0123456789ab", false},
        {"0190b4c2-7e1a-7c3d-8a9b_0123456789ab", false},
        {"0190b4c2-7e1a-7c3d-8a9b-0123456789ag", false},
        {"{0190b4c2-7e1a-7c3d-8a9b-0123456789ab}", false},
        {"", false},
    };
    return cr_make_param_array(struct uuid_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct uuid_case *c, cc_id, validates_the_canonical_form)
{
    cr_assert_eq(cc_uuid_valid(c->text), c->valid, "expected '%s' to be %s", c->text,
                 c->valid ? "valid" : "invalid");
}

Test(cc_id, null_is_not_a_uuid)
{
    cr_assert_not(cc_uuid_valid(NULL));
}

Test(cc_id, derives_the_same_v7_layout_id_from_the_same_time_and_key)
{
    char a[37], b[37], c[37];

    cr_assert_eq(cc_uuid_v7_derived(0x0190b4c2a1b2LL, "ix-1|answered|0", 15, a), 0);
    cr_assert_eq(cc_uuid_v7_derived(0x0190b4c2a1b2LL, "ix-1|answered|0", 15, b), 0);
    cr_assert_eq(cc_uuid_v7_derived(0x0190b4c2a1b2LL, "ix-1|answered|1", 15, c), 0);
    cr_assert_str_eq(a, b, "expected one id for one (time, key)");
    cr_assert_str_neq(a, c, "expected another key to give another id");
    cr_assert(strncmp(a, "0190b4c2-a1b2-7", 15) == 0, "expected the timestamp then version 7: %s",
              a);
    cr_assert(strchr("89ab", a[19]) != NULL, "expected the RFC 9562 variant: %s", a);
    cr_assert(cc_uuid_valid(a), "expected a canonical uuid: %s", a);
    cr_assert_eq(cc_uuid_v7_derived(-1, "k", 1, a), -EINVAL, "expected a negative time refused");
    cr_assert_str_empty(a);
}

/* Unit tests for common/cc_buf.c: growth, NUL termination, reset and free. */
#include <criterion/criterion.h>
#include <string.h>

#include "cc_buf.h"

TestSuite(cc_buf);

Test(cc_buf, appends_and_stays_nul_terminated_across_growth)
{
    struct cc_buf b = {0};
    char chunk[1000];

    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 50; i++) /* 50,000 bytes: several doublings from 4 kB */
        cc_buf_put(&b, chunk, sizeof(chunk));
    cc_buf_puts(&b, "end");
    cr_assert_not(b.oom);
    cr_assert_eq(b.len, 50003);
    cr_assert_geq(b.cap, b.len + 1);
    cr_assert_eq(b.p[b.len], '\0', "expected a NUL after the bytes");
    cr_assert_str_eq(b.p + 50000, "end");
    cr_assert_eq(b.p[49999], 'x');
    cc_buf_free(&b);
    cr_assert_null(b.p);
    cr_assert_eq(b.len, 0);
}

Test(cc_buf, keeps_embedded_nuls_and_empties_on_reset)
{
    struct cc_buf b = {0};

    cc_buf_put(&b, "a\0b", 4); /* with its NUL: ids one after the other */
    cc_buf_put(&b, "cd", 3);
    cr_assert_eq(b.len, 7);
    cr_assert_str_eq(b.p, "a");
    cr_assert_str_eq(b.p + 2, "b");
    cr_assert_str_eq(b.p + 4, "cd");
    size_t cap = b.cap;
    cc_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, cap, "expected the memory kept");
    cr_assert_str_eq(b.p, "");
    cc_buf_puts(&b, "again");
    cr_assert_str_eq(b.p, "again");
    cc_buf_free(&b);
}

Test(cc_buf, an_empty_buffer_frees_and_resets_safely)
{
    struct cc_buf b = {0};

    cc_buf_reset(&b);
    cr_assert_null(b.p);
    cc_buf_put(&b, "", 0);
    cr_assert_str_eq(b.p, "", "expected a NUL-terminated empty text after a put of nothing");
    cc_buf_free(&b);
    cc_buf_free(&b);
}

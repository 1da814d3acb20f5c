/* Unit tests for common/cc_heap.c: the allocator's count of bytes in use follows malloc/free. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cc_heap.h"

TestSuite(cc_heap);

#define BLOCK (8 * 1024 * 1024)

Test(cc_heap, counts_a_block_while_it_is_held_and_not_after)
{
    const char *source = NULL;
    int64_t before = cc_heap_allocated_bytes(&source);
    int64_t held, after;
    char *volatile block; /* volatile: the compiler may not drop the malloc/free pair */

    cr_assert_not_null(source);
    cr_assert_geq(before, 0, "no allocator answered (source %s)", source);
    block = malloc(BLOCK);
    cr_assert_not_null(block);
    memset(block, 1, BLOCK);
    held = cc_heap_allocated_bytes(NULL);
    cr_assert_geq(held - before, BLOCK, "%s: %lld bytes more while 8 MiB is held", source,
                  (long long)(held - before));
    cr_assert_lt(held - before, 2 * BLOCK, "%s: %lld bytes more while 8 MiB is held", source,
                 (long long)(held - before));
    cr_assert_eq(block[BLOCK - 1], 1);
    free(block);
    after = cc_heap_allocated_bytes(NULL);
    cr_assert_lt(after - before, BLOCK / 8, "%s: %lld bytes still counted after the free", source,
                 (long long)(after - before));
}

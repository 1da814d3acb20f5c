/* Unit tests for common/cc_heap.c: the allocator's count of bytes in use follows malloc/free,
 * and a sanitizer build, whose count cannot be trusted, answers none. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cc_heap.h"

TestSuite(cc_heap);

#define BLOCK (8 * 1024 * 1024)

/* Weak: defined when this test runs under AddressSanitizer (as in `make test`). */
extern void __asan_init(void) __attribute__((weak));

Test(cc_heap, a_sanitizer_build_answers_none_and_others_name_their_allocator)
{
    const char *source = NULL;
    int64_t bytes = cc_heap_allocated_bytes(&source);

    cr_assert_not_null(source);
    if (__asan_init) {
        cr_assert_eq(bytes, -1, "a sanitizer build answered %lld bytes", (long long)bytes);
        cr_assert_str_eq(source, "none");
    } else {
        cr_assert_geq(bytes, 0, "no figure from %s", source);
        cr_assert(strcmp(source, "jemalloc") == 0 || strcmp(source, "glibc") == 0, "%s", source);
    }
}

Test(cc_heap, counts_a_block_while_it_is_held_and_not_after)
{
    const char *source = NULL;
    int64_t before = cc_heap_allocated_bytes(&source);
    int64_t held, after;
    char *volatile block; /* volatile: the compiler may not drop the malloc/free pair */

    if (before < 0)
        cr_skip_test("no allocator figure in this build (%s): see cc_heap.h", source);
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

#include "cc_heap.h"

#include <malloc.h>
#include <stddef.h>

/* Weak: present only when the binary links jemalloc (release builds) or runs under a sanitizer. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));
extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static int64_t jemalloc_allocated(void)
{
    uint64_t epoch = 1;
    size_t len = sizeof(epoch);
    size_t allocated = 0;

    /* jemalloc caches its statistics; writing the epoch refreshes them */
    if (mallctl("epoch", &epoch, &len, &epoch, len) != 0)
        return -1;
    len = sizeof(allocated);
    if (mallctl("stats.allocated", &allocated, &len, NULL, 0) != 0)
        return -1;
    return (int64_t)allocated;
}

int64_t cc_heap_allocated_bytes(const char **source)
{
    const char *src = "none";
    int64_t bytes = -1;

    if (__sanitizer_get_current_allocated_bytes) {
        /* a sanitizer's allocator serves malloc: no trustworthy figure (cc_heap.h) */
    } else if (mallctl) {
        bytes = jemalloc_allocated();
        src = bytes >= 0 ? "jemalloc" : "none";
    } else {
        struct mallinfo2 mi = mallinfo2();

        bytes = (int64_t)(mi.uordblks + mi.hblkhd);
        src = "glibc";
    }
    if (source)
        *source = src;
    return bytes;
}

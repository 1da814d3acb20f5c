/*
 * cc_heap: how many bytes the process's allocator has handed out and not had back.
 *
 * The figure a leak check wants, where the RSS is not: the RSS also counts pages an allocator
 * keeps after the application freed them, and returns to the kernel when it sees fit, so two RSS
 * readings of a process that leaks nothing differ by tens of megabytes (sip-edge, session 13).
 * Which allocator answers depends on the build: jemalloc (release builds link it: its
 * "stats.allocated" after an "epoch" refresh), AddressSanitizer's allocator (sanitizer builds),
 * else glibc's malloc (mallinfo2: in-use bytes of the arenas plus the mmapped chunks).
 * Thread-safe; allocates nothing.
 */
#ifndef CC_HEAP_H
#define CC_HEAP_H

#include <stdint.h>

/* Bytes allocated and not freed, or -1 when no allocator answered. *source (may be NULL) is set
 * to "jemalloc", "asan", "glibc" or "none". */
int64_t cc_heap_allocated_bytes(const char **source);

#endif

/*
 * cc_heap: how many bytes the process's allocator has handed out and not had back.
 *
 * The figure a leak check wants, where the RSS is not: the RSS also counts pages an allocator
 * keeps after the application freed them, and returns to the kernel when it sees fit, so two RSS
 * readings of a process that leaks nothing differ by tens of megabytes (sip-edge, session 13).
 * Which allocator answers depends on the build: jemalloc (release builds link it: its
 * "stats.allocated" after an "epoch" refresh), else glibc's malloc (mallinfo2: in-use bytes of
 * every arena plus the mmapped chunks). Sanitizer builds answer nothing: AddressSanitizer's own
 * count (__sanitizer_get_current_allocated_bytes, per-thread statistics added up without a lock)
 * drifted in sip-edge -- up ~400 bytes a call while a walk of its live chunks
 * (__sanitizer_print_memory_profile) went down --, and glibc's figures there describe an arena
 * nothing allocates from. Thread-safe; allocates nothing.
 */
#ifndef CC_HEAP_H
#define CC_HEAP_H

#include <stdint.h>

/* Bytes allocated and not freed, or -1 when no allocator's figure can be trusted (sanitizer
 * builds). *source (may be NULL) is set to "jemalloc", "glibc" or "none". */
int64_t cc_heap_allocated_bytes(const char **source);

#endif

/*
 * cc_buf: a growing byte buffer for text built piece by piece (a COPY stream, the JSON parameter
 * of a batch statement). Zero-initialise it ({0}); after anything was put, p holds len bytes and
 * a NUL after them. When an allocation fails, oom is set and every later put is ignored, so a
 * builder checks once, at the end.
 */
#ifndef CC_BUF_H
#define CC_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct cc_buf {
    char *p; /* NULL until the first put */
    size_t len, cap;
    bool oom;
};

/* Appends n bytes of s (which may hold NULs). */
void cc_buf_put(struct cc_buf *b, const void *s, size_t n);
/* Appends the string s, without its NUL. */
void cc_buf_puts(struct cc_buf *b, const char *s);
/* Empties b for the next use, keeping its memory; clears oom. */
void cc_buf_reset(struct cc_buf *b);
/* Frees b's memory and zeroes it. */
void cc_buf_free(struct cc_buf *b);

#endif

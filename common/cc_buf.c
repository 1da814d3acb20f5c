#include "cc_buf.h"

#include <stdlib.h>
#include <string.h>

#define CC_BUF_FIRST_CAP 4096

void cc_buf_put(struct cc_buf *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : CC_BUF_FIRST_CAP;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void cc_buf_puts(struct cc_buf *b, const char *s)
{
    cc_buf_put(b, s, strlen(s));
}

void cc_buf_reset(struct cc_buf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->p)
        b->p[0] = '\0';
}

void cc_buf_free(struct cc_buf *b)
{
    free(b->p);
    *b = (struct cc_buf){0};
}

/*
 * metrics_wallboard: the wallboard page's files (wallboard/index.html, wallboard.js,
 * wallboard.css), embedded in the binary at build time so that the service serves them with no
 * file on disk and no CDN (the Makefile runs tools/embed-files.sh over them).
 *
 * Read-only static data: thread-safe, nothing to free.
 */
#ifndef METRICS_WALLBOARD_H
#define METRICS_WALLBOARD_H

#include <stddef.h>

/* One embedded file: its name under /wallboard/, its Content-Type, its bytes (len of them, not
 * NUL-terminated). Static storage: valid for the life of the process. */
struct metrics_asset {
    const char *path, *content_type;
    const unsigned char *data;
    size_t len;
};

/* The file named path ("index.html", "wallboard.js" or "wallboard.css": the bare name, no
 * leading '/'; the caller maps "/wallboard/" to "index.html"), or NULL for any other name or a
 * NULL path. */
const struct metrics_asset *metrics_wallboard_asset(const char *path);

#endif

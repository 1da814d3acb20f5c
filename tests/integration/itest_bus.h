/*
 * itest_bus: bus helpers for integration tests.
 *
 * Services take fixed topic names, and a new consumer group starts at the earliest offset, so
 * a service started by a test would first read everything earlier tests left on the shared
 * topics. itest_group_at_end() commits the current end of every partition of the topics for a
 * group before the service starts: the service then reads only what comes after, exactly as a
 * group that has been running all along would.
 */
#ifndef ITEST_BUS_H
#define ITEST_BUS_H

#include <stddef.h>

/* Commits, for group, the high watermark of every partition of the n topics (on the brokers of
 * CC_KAFKA_BROKERS). Returns 0, or a negative errno-style code (logged). */
int itest_group_at_end(const char *group, const char *const *topics, size_t n);

#endif

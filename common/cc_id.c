/* cc_id: RFC 9562 UUIDv7 generation and validation; see cc_id.h. */
#include "cc_id.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>

#include "cc_time.h"

/*
 * Monotonicity (RFC 9562 6.2, method 1): the 12-bit rand_a field is a counter seeded at random
 * (top bit clear, leaving room to count) each new millisecond and incremented within one; when
 * it overflows, or the clock steps back, the timestamp is advanced past the last one used.
 */
static pthread_mutex_t uuid_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t uuid_last_ms = -1;
static uint16_t uuid_counter;

static int fill_random(void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Picks the (ms, counter) pair for the next id under the lock. */
static void next_stamp(uint16_t seed, int64_t *ms, uint16_t *counter)
{
    int64_t now = cc_time_now_ms();

    pthread_mutex_lock(&uuid_lock);
    if (now > uuid_last_ms) {
        uuid_last_ms = now;
        uuid_counter = seed & 0x7ff;
    } else if (uuid_counter < 0xfff) {
        uuid_counter++;
    } else {
        uuid_last_ms++;
        uuid_counter = seed & 0x7ff;
    }
    *ms = uuid_last_ms;
    *counter = uuid_counter;
    pthread_mutex_unlock(&uuid_lock);
}

/* out[37] = the canonical lowercase text of the 16 bytes b. */
static void uuid_format(const uint8_t b[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;

    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 0xf];
    }
    *o = '\0';
}

int cc_uuid_v7(char out[37])
{
    uint8_t rnd[10], b[16];
    int64_t ms;
    uint16_t counter;
    int rc;

    out[0] = '\0';
    rc = fill_random(rnd, sizeof(rnd));
    if (rc < 0)
        return rc;
    next_stamp((uint16_t)(rnd[0] << 8 | rnd[1]), &ms, &counter);
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (counter >> 8));
    b[7] = (uint8_t)counter;
    b[8] = (uint8_t)(0x80 | (rnd[2] & 0x3f));
    for (int i = 9; i < 16; i++)
        b[i] = rnd[i - 6];

    uuid_format(b, out);
    return 0;
}

int cc_uuid_v7_derived(int64_t ms, const void *key, size_t keylen, char out[37])
{
    unsigned char h[EVP_MAX_MD_SIZE], b[16];
    unsigned int hlen = 0;

    out[0] = '\0';
    if (!key || ms < 0 || EVP_Digest(key, keylen, h, &hlen, EVP_sha256(), NULL) != 1 || hlen < 10)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
    memcpy(b + 6, h, 10);
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f)); /* variant 10 */
    uuid_format(b, out);
    return 0;
}

bool cc_uuid_valid(const char *s)
{
    if (!s)
        return false;
    for (int i = 0; i < CC_UUID_STRLEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return s[CC_UUID_STRLEN] == '\0';
}

/* sha256.h: SHA-256 (FIPS 180-4), the key of a build's inputs. */
#ifndef HRD_SHA256_H
#define HRD_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct hrd_sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
} hrd_sha256;

void hrd_sha256_init(hrd_sha256 *c);
void hrd_sha256_update(hrd_sha256 *c, const void *data, size_t n);
/* Write the digest as 64 lowercase hex digits and a NUL. */
void hrd_sha256_hex(hrd_sha256 *c, char out[65]);

#endif

/* sha256.h: SHA-256 (FIPS 180-4): the key of a build's inputs, and the check of an object that travels as bytes. */
#ifndef HRP_SHA256_H
#define HRP_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct hrp_sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
} hrp_sha256;

void hrp_sha256_init(hrp_sha256 *c);
void hrp_sha256_update(hrp_sha256 *c, const void *data, size_t n);
/* Write the digest as 64 lowercase hex digits and a NUL. */
void hrp_sha256_hex(hrp_sha256 *c, char out[65]);

#endif

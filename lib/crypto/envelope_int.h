/*
 * envelope_int.h - private to lib/crypto: the EnvelopedData to an EC device key, which
 * envelope.c hands to envelope_ec.c instead of OpenSSL's CMS. Pool threads.
 */
#ifndef PC_ENVELOPE_INT_H
#define PC_ENVELOPE_INT_H

#ifndef PC_INSIDE_CRYPTO
#error "envelope_int.h is private to lib/crypto: use envelope.h"
#endif

#include <stddef.h>

#include <openssl/ec.h>

#include "pc_err.h"

/* The recipient's name in the envelope: SHA-1 of the device's public key bits. */
#define PC_ENVELOPE_SKI_LEN 20
/* The largest EC point sealed to or from: P-384 uncompressed (0x04, x, y). */
#define PC_ENVELOPE_MAX_EC_POINT 97

/* pc_envelope_ec_seal encrypts in to the holder of device (a P-256 or P-384 public key whose
 * point the caller has checked: on the curve, not the point at infinity; borrowed, only read,
 * so several threads may seal to one key at once) and returns the CMS ContentInfo DER in *out
 * (the caller's, OPENSSL_free). The recipient is named by ski. */
pc_err_t pc_envelope_ec_seal(const EC_KEY *device, const unsigned char ski[PC_ENVELOPE_SKI_LEN],
                             const unsigned char *in, size_t in_len, unsigned char **out,
                             size_t *out_len, pc_diag_t *diag);

#endif

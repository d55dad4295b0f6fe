/*
 * fuzz_keys.h - the fixed test keys the fuzz targets trust and the seed generator signs with,
 * so that the committed seeds verify and reach the decoders behind the signature checks. They
 * protect nothing: they exist only here, for fuzzing.
 */
#ifndef PC_FUZZ_KEYS_H
#define PC_FUZZ_KEYS_H

/* hmac-sha256 signer "fuzz-hmac": a 32-byte shared secret. */
#define FUZZ_HMAC_ID "fuzz-hmac"
#define FUZZ_HMAC_SECRET "pkcs-connector fuzz hmac secret."

/* ed25519 signer "fuzz-ed25519": the 32-byte private key (RFC 8032 seed). */
#define FUZZ_ED25519_ID "fuzz-ed25519"
#define FUZZ_ED25519_SEED "pkcs-connector fuzz ed25519 key."

/* The cluster's result key the result target trusts: the ed25519 key above, under this id. */
#define FUZZ_RESULT_KEY_ID "fuzz-results"

/* ecdsa-p256-sha256 signer "fuzz-ecdsa": a P-256 private key, PKCS#8 PEM. */
#define FUZZ_ECDSA_ID "fuzz-ecdsa"
#define FUZZ_ECDSA_KEY                                                                             \
    "-----BEGIN PRIVATE KEY-----\n"                                                                \
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgN3ylAIAglaGPyU3G\n"                           \
    "G9anNRE54v3USVPN8j9A4n3fQRKhRANCAASAF4z/LU4SxQHi9JxJ69ZrRoGqfdfK\n"                           \
    "mKswZg7VyeMoxtRytWvb7frq2uGDKzKvt/8MV85MBrGVdpBviqH9KLW8\n"                                   \
    "-----END PRIVATE KEY-----\n"

/* The CA the cfssl target trusts and the seed generator signs cfssl answers with: a P-256
 * private key, PKCS#8 PEM, and the subject of its self-signed certificate, which each program
 * makes for itself (a certificate is checked against the CA's name and key, not its bytes). */
#define FUZZ_CA_SUBJECT "Fuzz Test CA"
#define FUZZ_CA_KEY                                                                                \
    "-----BEGIN PRIVATE KEY-----\n"                                                                \
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgkO6Ra1r/2r3uyWQF\n"                           \
    "fiqWVhVFOTYicYT35k2sQHdYg9WhRANCAATDrudNTG6fmsJTLpWQcMyUK3mx+0Ev\n"                           \
    "1v2ApoVoKvAmOjSQNfSUJUcMUmfbeBBT2UhBnS/yNKs9dX9Es2wGZ1KI\n"                                   \
    "-----END PRIVATE KEY-----\n"

/* The serial the cfssl target asks for in its client-serials mode, decimal, and the seeds'
 * signed certificate carries. */
#define FUZZ_CFSSL_SERIAL 4660
#define FUZZ_CFSSL_SERIAL_DEC "4660"

#endif

/*
 * fuzz_spki.c - libFuzzer target: the device public key of a request, a SubjectPublicKeyInfo
 * in DER (lib/crypto/envelope.c, reached from lib/engine/issue.c and import.c for ISSUE and
 * IMPORT_PFX requests; lib/wire/request.c only bounds its size). The input is the key; a key that
 * is accepted is also sealed to, as the worker does with the PFX, so that the decoded key is used
 * and not only parsed.
 */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "envelope.h"
#include "fuzz_util.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char content[] = "a PKCS#12 would be here";
    pc_diag_t diag = {{0}};
    pc_envelope_to_t *to = NULL;
    unsigned char *out = NULL;
    size_t out_len = 0;

    if (size > PC_MAX_SPKI_LEN) /* pc_request_validate refuses longer keys before this */
        return 0;
    if (pc_envelope_to_new(data, size, &to, &diag) == PC_OK) {
        if (pc_envelope_seal_to(to, content, sizeof(content), &out, &out_len, &diag) == PC_OK)
            OPENSSL_free(out);
        pc_envelope_to_free(to);
    }
    ERR_clear_error();
    return 0;
}

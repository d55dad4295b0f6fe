/*
 * envelope.c - seals a PFX in CMS EnvelopedData to the device's public key, so that only the
 * device holding the matching private key can open it (`openssl cms -decrypt -inkey key.pem`).
 *
 * OpenSSL's CMS API names recipients by certificate, but a device sends a bare public key. We
 * wrap the key in a throwaway, unsigned, in-memory X509 whose only purpose is to carry the
 * subjectKeyIdentifier (SHA-1 of the public key bits, RFC 5280 4.2.1.2 method 1); with
 * CMS_USE_KEYID the RecipientInfo names the device by that SKI and no certificate goes into the
 * output. pc_envelope_open does what a device does, for tests and self-checks.
 *
 * EC device keys take another road: their point is decoded on the curve's group built once and
 * checked there, once per pc_envelope_to_t, and envelope_ec.c writes their EnvelopedData itself
 * (why: its opening comment). Only RSA keys go through OpenSSL's CMS.
 * Pool threads; no shared state.
 */
/* d2i_EC_PUBKEY / d2i_RSA_PUBKEY and the legacy keys they make: see device_key_decode. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "envelope.h"
#include "envelope_int.h"
#include "keygen_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MIN_RSA_BITS 2048
#define MAX_SPKI_LEN 16384 /* RSA-16384, the largest OpenSSL uses, is about 2100 bytes */

static const char accepted_keys[] = "accepted: RSA of 2048 bits or more, EC P-256 or EC P-384";

/* describe_key writes what key is for messages ("RSA-1024", "EC secp521r1", "ED25519"). */
static void describe_key(EVP_PKEY *key, char *buf, size_t len)
{
    char group[64];
    const char *type = EVP_PKEY_get0_type_name(key);

    if (type == NULL)
        type = OBJ_nid2sn(EVP_PKEY_get_base_id(key));
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
        snprintf(buf, len, "RSA-%d", EVP_PKEY_get_bits(key));
    else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
             EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) == 1)
        snprintf(buf, len, "EC %s", group);
    else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC)
        snprintf(buf, len, "EC with explicit curve parameters");
    else
        snprintf(buf, len, "%s", type != NULL ? type : "an unknown key type");
    ERR_clear_error();
}

/* device_key_ok tells whether key, decoded by OpenSSL's decoders, is one the envelope accepts:
 * RSA >= 2048. The EC keys accepted (P-256 and P-384 named by their OID) never get here: they
 * are decoded by ec_device_decode. */
static bool device_key_ok(EVP_PKEY *key)
{
    return EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA && EVP_PKEY_get_bits(key) >= MIN_RSA_BITS;
}

/*
 * The throwaway recipient certificate: v3, the device's public key and one SKI extension,
 * nothing else. It is never signed, encoded or verified, and CMS_USE_KEYID keeps it out of the
 * envelope; it only carries the key and its SKI into OpenSSL's CMS API.
 */
#define SKI_LEN PC_ENVELOPE_SKI_LEN

/* The parts of a SubjectPublicKeyInfo that are read before the key is decoded. */
typedef struct spki_parts {
    int alg_nid;                /* of the AlgorithmIdentifier */
    int curve_nid;              /* its parameter when that is an OID (an EC named curve) */
    unsigned char ski[SKI_LEN]; /* SHA-1 of the subjectPublicKey bits */
    unsigned char
        point[PC_ENVELOPE_MAX_EC_POINT]; /* the subjectPublicKey bits when they fit (EC) */
    size_t point_len;                    /* 0 when they did not fit or had unused bits */
    size_t trailing;                     /* bytes after the SubjectPublicKeyInfo */
} spki_parts_t;

static bool spki_ski(const ASN1_BIT_STRING *bits, unsigned char ski[SKI_LEN]);

/* spki_parse reads spki (a DER SEQUENCE of an AlgorithmIdentifier and a BIT STRING) with a
 * generic ASN.1 parse, without decoding the key. False when spki is not that shape. */
static bool spki_parse(const unsigned char *spki, size_t spki_len, spki_parts_t *parts)
{
    const unsigned char *p = spki;
    ASN1_SEQUENCE_ANY *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)spki_len);
    X509_ALGOR *alg = NULL;
    bool ok = seq != NULL && sk_ASN1_TYPE_num(seq) == 2 &&
              ASN1_TYPE_get(sk_ASN1_TYPE_value(seq, 0)) == V_ASN1_SEQUENCE &&
              ASN1_TYPE_get(sk_ASN1_TYPE_value(seq, 1)) == V_ASN1_BIT_STRING;

    if (ok) {
        const ASN1_STRING *alg_der = sk_ASN1_TYPE_value(seq, 0)->value.sequence;
        const unsigned char *q = ASN1_STRING_get0_data(alg_der);
        alg = d2i_X509_ALGOR(NULL, &q, ASN1_STRING_length(alg_der));
        ok = alg != NULL && spki_ski(sk_ASN1_TYPE_value(seq, 1)->value.bit_string, parts->ski);
    }
    if (ok) {
        const ASN1_BIT_STRING *bits = sk_ASN1_TYPE_value(seq, 1)->value.bit_string;
        bool whole_bytes = !(bits->flags & ASN1_STRING_FLAG_BITS_LEFT) || (bits->flags & 7) == 0;

        parts->alg_nid = OBJ_obj2nid(alg->algorithm);
        parts->curve_nid = alg->parameter != NULL && alg->parameter->type == V_ASN1_OBJECT
                               ? OBJ_obj2nid(alg->parameter->value.object)
                               : NID_undef;
        if (whole_bytes && bits->length > 0 && (size_t)bits->length <= sizeof(parts->point)) {
            memcpy(parts->point, bits->data, (size_t)bits->length);
            parts->point_len = (size_t)bits->length;
        }
        parts->trailing = spki_len - (size_t)(p - spki);
    }
    X509_ALGOR_free(alg);
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    ERR_clear_error();
    return ok;
}

/*
 * device_key_decode decodes an EC or RSA key with the legacy decoders (d2i_EC_PUBKEY,
 * d2i_RSA_PUBKEY): OpenSSL 3.0's provider decoder lookup costs more than the envelope's own
 * crypto, and a legacy key also goes into the recipient certificate without re-encoding.
 * Other types go through the provider decoder, only to be named in the refusal. NULL when
 * spki does not decode.
 */
static EVP_PKEY *device_key_decode(const unsigned char *spki, size_t spki_len, int alg_nid)
{
    const unsigned char *p = spki;
    EVP_PKEY *key = NULL;
    EC_KEY *ec = NULL;
    RSA *rsa = NULL;

    if (alg_nid == NID_X9_62_id_ecPublicKey) {
        if ((ec = d2i_EC_PUBKEY(NULL, &p, (long)spki_len)) != NULL &&
            (key = EVP_PKEY_new()) != NULL && EVP_PKEY_assign_EC_KEY(key, ec) == 1)
            return key;
    } else if (alg_nid == NID_rsaEncryption) {
        if ((rsa = d2i_RSA_PUBKEY(NULL, &p, (long)spki_len)) != NULL &&
            (key = EVP_PKEY_new()) != NULL && EVP_PKEY_assign_RSA(key, rsa) == 1)
            return key;
    } else {
        return d2i_PUBKEY(NULL, &p, (long)spki_len);
    }
    EC_KEY_free(ec);
    RSA_free(rsa);
    EVP_PKEY_free(key);
    return NULL;
}

/* spki_ski computes the SKI of bits: SHA-1 of the subjectPublicKey BIT STRING contents
 * (RFC 5280 4.2.1.2 method 1). */
static bool spki_ski(const ASN1_BIT_STRING *bits, unsigned char ski[SKI_LEN])
{
    return EVP_Digest(bits->data, (size_t)bits->length, ski, NULL, EVP_sha1(), NULL) == 1;
}

/* algor_set_ed25519 names Ed25519 in an AlgorithmIdentifier of a certificate we own. OpenSSL
 * 3.0 hands the certificate's two signature AlgorithmIdentifiers out as const only, because
 * signing is the way to fill them; this certificate is never signed, but it must be encodable
 * for CMS to read its SKI back, so the const is dropped here (the objects are ours). */
static bool algor_set_ed25519(const X509_ALGOR *alg)
{
    X509_ALGOR *mutable_alg;

    memcpy(&mutable_alg, &alg, sizeof(mutable_alg));
    return mutable_alg != NULL &&
           X509_ALGOR_set0(mutable_alg, OBJ_nid2obj(NID_ED25519), V_ASN1_UNDEF, NULL) == 1;
}

static bool name_signature_algorithm(X509 *x509)
{
    const X509_ALGOR *outer = NULL;

    X509_get0_signature(NULL, &outer, x509);
    return algor_set_ed25519(outer) && algor_set_ed25519(X509_get0_tbs_sigalg(x509));
}

/* recipient_new makes the throwaway certificate that names the holder of key by ski. */
static X509 *recipient_new(EVP_PKEY *key, const unsigned char ski[SKI_LEN])
{
    ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();
    X509 *x509 = X509_new();
    bool ok = x509 != NULL && id != NULL && ASN1_OCTET_STRING_set(id, ski, SKI_LEN) == 1 &&
              X509_set_version(x509, X509_VERSION_3) == 1 &&
              ASN1_INTEGER_set(X509_get_serialNumber(x509), 1) == 1 &&
              ASN1_TIME_set(X509_getm_notBefore(x509), 0) != NULL &&
              ASN1_TIME_set(X509_getm_notAfter(x509), 0) != NULL &&
              name_signature_algorithm(x509) && X509_set_pubkey(x509, key) == 1 &&
              X509_add1_ext_i2d(x509, NID_subject_key_identifier, id, 0, X509V3_ADD_DEFAULT) == 1;

    ASN1_OCTET_STRING_free(id);
    if (ok)
        return x509;
    X509_free(x509);
    return NULL;
}

/* recipient_of makes the recipient certificate for the public half of key (the opener's own
 * key: only its SKI is computed from its encoding). */
static X509 *recipient_of(EVP_PKEY *key)
{
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(key, &spki);
    spki_parts_t parts = {0};
    X509 *x509 = NULL;

    if (spki_len > 0 && spki_parse(spki, (size_t)spki_len, &parts))
        x509 = recipient_new(key, parts.ski);
    OPENSSL_free(spki);
    return x509;
}

/* set_oaep asks for RSAES-OAEP with SHA-256 and MGF1-SHA-256 instead of PKCS#1 v1.5. */
static bool set_oaep(CMS_RecipientInfo *ri)
{
    EVP_PKEY_CTX *pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);

    return pctx != NULL && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) > 0 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0;
}

/* add_recipient adds the RSA device named by recip, with RSA-OAEP. */
static pc_err_t add_recipient(CMS_ContentInfo *cms, X509 *recip, pc_diag_t *diag)
{
    /* CMS_KEY_PARAM: leave the algorithm parameters to us (OAEP) */
    CMS_RecipientInfo *ri = CMS_add1_recipient_cert(cms, recip, CMS_USE_KEYID | CMS_KEY_PARAM);

    if (ri == NULL)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not add the device as CMS recipient");
    if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_TRANS || !set_oaep(ri))
        return pc_fail_ssl(diag, PC_ERR_CRYPTO,
                           "could not set the RSA-OAEP parameters for the device key");
    return PC_OK;
}

static pc_err_t encrypt_content(CMS_ContentInfo *cms, const unsigned char *in, size_t in_len,
                                pc_diag_t *diag)
{
    pc_err_t err = PC_OK;
    BIO *bio;

    if (in_len > INT_MAX)
        return pc_fail(diag, PC_ERR_TOO_LARGE, "the content to seal is too large (%zu bytes)",
                       in_len);
    bio = BIO_new_mem_buf(in_len > 0 ? in : (const unsigned char *)"", (int)in_len);
    if (bio == NULL)
        return pc_fail_ssl(diag, PC_ERR_NOMEM, "could not wrap the content to seal");
    if (CMS_final(cms, bio, NULL, CMS_BINARY) != 1)
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not encrypt the envelope to the device key");
    BIO_free(bio);
    return err;
}

/* A device key ready to seal to: one of the two, never both. */
struct pc_envelope_to {
    X509 *recip;                /* RSA: the throwaway certificate (the device key and its SKI) */
    EC_KEY *ec;                 /* EC: the device's point, checked (ec_device_decode) */
    unsigned char ski[SKI_LEN]; /* EC: the name the envelope gives the device */
};

/* is_named_ec tells whether parts are an EC key on P-256 or P-384 named by the curve's OID. */
static bool is_named_ec(const spki_parts_t *parts)
{
    return parts->alg_nid == NID_X9_62_id_ecPublicKey &&
           (parts->curve_nid == NID_X9_62_prime256v1 || parts->curve_nid == NID_secp384r1);
}

/* ec_device_decode decodes the point of a named P-256/P-384 key on the group built once
 * (keygen.c) and checks it: on the curve (o2i_ECPublicKey refuses a point that is not) and not
 * the point at infinity. For curves of cofactor 1 that is the whole validation of a public key
 * (SP 800-56A 5.6.2.3.3: n * Q is then infinity by itself), so the envelopes sealed to it do not
 * repeat it. NULL when the bits are not such a point. */
static EC_KEY *ec_device_decode(const spki_parts_t *parts)
{
    const EC_GROUP *group = pc_keygen_ec_group(parts->curve_nid);
    const unsigned char *p = parts->point;
    EC_KEY *ec = group != NULL && parts->point_len > 0 ? EC_KEY_new() : NULL;

    if (ec != NULL && EC_KEY_set_group(ec, group) == 1 &&
        o2i_ECPublicKey(&ec, &p, (long)parts->point_len) != NULL &&
        EC_KEY_get0_public_key(ec) != NULL &&
        !EC_POINT_is_at_infinity(EC_KEY_get0_group(ec), EC_KEY_get0_public_key(ec)))
        return ec;
    EC_KEY_free(ec);
    ERR_clear_error();
    return NULL;
}

/* check_device_key refuses a key OpenSSL's decoders could not read or one not accepted. */
static pc_err_t check_device_key(EVP_PKEY *key, const spki_parts_t *parts, pc_diag_t *diag)
{
    char what[96];

    if (key == NULL)
        return pc_fail_ssl(diag, PC_ERR_INVALID_PARAM,
                           "the device public key is not a DER SubjectPublicKeyInfo; %s",
                           accepted_keys);
    if (device_key_ok(key))
        return PC_OK;
    if (parts->alg_nid == NID_X9_62_id_ecPublicKey && parts->curve_nid == NID_undef)
        snprintf(what, sizeof(what), "EC with explicit curve parameters instead of a named curve");
    else
        describe_key(key, what, sizeof(what));
    return pc_fail(diag, PC_ERR_INVALID_PARAM, "the device public key is %s; %s", what,
                   accepted_keys);
}

/* rsa_recipient decodes an RSA device key (and any other, to name it in the refusal) and makes
 * its recipient certificate. */
static pc_err_t rsa_recipient(const unsigned char *spki, size_t spki_len, const spki_parts_t *parts,
                              X509 **recip, pc_diag_t *diag)
{
    EVP_PKEY *key = device_key_decode(spki, spki_len, parts->alg_nid);
    pc_err_t err = check_device_key(key, parts, diag);

    if (err == PC_OK && (*recip = recipient_new(key, parts->ski)) == NULL)
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not prepare the device key as a recipient");
    EVP_PKEY_free(key);
    return err;
}

pc_err_t pc_envelope_to_new(const unsigned char *spki, size_t spki_len, pc_envelope_to_t **out,
                            pc_diag_t *diag)
{
    spki_parts_t parts = {0};
    X509 *recip = NULL;
    EC_KEY *ec = NULL;
    pc_err_t err;

    *out = NULL;
    if (spki == NULL || spki_len == 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "the device public key is missing");
    if (spki_len > MAX_SPKI_LEN)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "the device public key is %zu bytes, over the limit of %d; %s", spki_len,
                       MAX_SPKI_LEN, accepted_keys);
    if (!spki_parse(spki, spki_len, &parts))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "the device public key is not a DER SubjectPublicKeyInfo; %s",
                       accepted_keys);
    if (parts.trailing > 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "the device public key has %zu bytes after its SubjectPublicKeyInfo",
                       parts.trailing);
    if (is_named_ec(&parts)) {
        if ((ec = ec_device_decode(&parts)) == NULL)
            return pc_fail(
                diag, PC_ERR_INVALID_PARAM, "the device public key is not a valid point on %s; %s",
                parts.curve_nid == NID_X9_62_prime256v1 ? "P-256" : "P-384", accepted_keys);
    } else if ((err = rsa_recipient(spki, spki_len, &parts, &recip, diag)) != PC_OK) {
        return err;
    }
    if ((*out = calloc(1, sizeof(**out))) == NULL) {
        X509_free(recip);
        EC_KEY_free(ec);
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory for the device public key");
    }
    (*out)->recip = recip;
    (*out)->ec = ec;
    memcpy((*out)->ski, parts.ski, SKI_LEN);
    return PC_OK;
}

void pc_envelope_to_free(pc_envelope_to_t *to)
{
    if (to == NULL)
        return;
    X509_free(to->recip);
    EC_KEY_free(to->ec);
    free(to);
}

pc_err_t pc_envelope_seal_to(const pc_envelope_to_t *to, const unsigned char *in, size_t in_len,
                             unsigned char **out, size_t *out_len, pc_diag_t *diag)
{
    pc_err_t err;
    CMS_ContentInfo *cms = NULL;
    unsigned char *der = NULL;
    int n;

    if (to == NULL || (in == NULL && in_len > 0) || out == NULL || out_len == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "pc_envelope_seal_to needs a recipient, content and outputs");
    *out = NULL;
    *out_len = 0;
    if (to->ec != NULL)
        return pc_envelope_ec_seal(to->ec, to->ski, in, in_len, out, out_len, diag);
    cms = CMS_EnvelopedData_create(EVP_aes_256_cbc());
    if (cms == NULL || CMS_set_detached(cms, 0) != 1) { /* the ciphertext goes inside */
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not create the CMS envelope");
        goto out_free_cms;
    }
    err = add_recipient(cms, to->recip, diag);
    if (err == PC_OK)
        err = encrypt_content(cms, in, in_len, diag);
    if (err != PC_OK)
        goto out_free_cms;
    n = i2d_CMS_ContentInfo(cms, &der);
    if (n <= 0) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not encode the CMS envelope");
        goto out_free_cms;
    }
    *out = der;
    *out_len = (size_t)n;
out_free_cms:
    CMS_ContentInfo_free(cms);
    return err;
}

pc_err_t pc_envelope_seal(const unsigned char *spki, size_t spki_len, const unsigned char *in,
                          size_t in_len, unsigned char **out, size_t *out_len, pc_diag_t *diag)
{
    pc_envelope_to_t *to = NULL;
    pc_err_t err;

    if (out != NULL && out_len != NULL) {
        *out = NULL;
        *out_len = 0;
    }
    if ((err = pc_envelope_to_new(spki, spki_len, &to, diag)) != PC_OK)
        return err;
    err = pc_envelope_seal_to(to, in, in_len, out, out_len, diag);
    pc_envelope_to_free(to);
    return err;
}

static pc_err_t decode_envelope(const unsigned char *in, size_t in_len, CMS_ContentInfo **cms,
                                pc_diag_t *diag)
{
    const unsigned char *p = in;

    if (in == NULL || in_len == 0 || in_len > LONG_MAX)
        return pc_fail(diag, PC_ERR_BAD_MESSAGE, "the envelope is empty");
    *cms = d2i_CMS_ContentInfo(NULL, &p, (long)in_len);
    if (*cms == NULL)
        return pc_fail_ssl(diag, PC_ERR_BAD_MESSAGE, "the envelope is not CMS DER");
    if ((size_t)(p - in) != in_len || OBJ_obj2nid(CMS_get0_type(*cms)) != NID_pkcs7_enveloped) {
        CMS_ContentInfo_free(*cms);
        *cms = NULL;
        return pc_fail(diag, PC_ERR_BAD_MESSAGE,
                       "the envelope is not a single CMS EnvelopedData (wrong type or trailing "
                       "data)");
    }
    return PC_OK;
}

/* find_recipient returns the RecipientInfo of cms naming recip by SKI, or NULL. */
static CMS_RecipientInfo *find_recipient(CMS_ContentInfo *cms, X509 *recip)
{
    STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);

    for (int i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
        CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
        STACK_OF(CMS_RecipientEncryptedKey) * reks;

        if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS &&
            CMS_RecipientInfo_ktri_cert_cmp(ri, recip) == 0)
            return ri;
        if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_AGREE)
            continue;
        reks = CMS_RecipientInfo_kari_get0_reks(ri);
        for (int j = 0; j < sk_CMS_RecipientEncryptedKey_num(reks); j++)
            if (CMS_RecipientEncryptedKey_cert_cmp(sk_CMS_RecipientEncryptedKey_value(reks, j),
                                                   recip) == 0)
                return ri;
    }
    return NULL;
}

/* is_oaep tells whether a key transport RecipientInfo uses RSAES-OAEP. */
static bool is_oaep(CMS_RecipientInfo *ri)
{
    X509_ALGOR *alg = NULL;
    const ASN1_OBJECT *obj = NULL;

    if (CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &alg) != 1 || alg == NULL)
        return false;
    X509_ALGOR_get0(&obj, NULL, NULL, alg);
    return OBJ_obj2nid(obj) == NID_rsaesOaep;
}

/* copy_out hands the decrypted bytes to the caller; the secure memory BIO wipes its own copy
 * when freed. */
static pc_err_t copy_out(BIO *bio, unsigned char **out, size_t *out_len, pc_diag_t *diag)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);

    if (n < 0)
        return pc_fail(diag, PC_ERR_CRYPTO, "could not read the decrypted envelope");
    *out = OPENSSL_malloc(n > 0 ? (size_t)n : 1);
    if (*out == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "no memory for the decrypted envelope");
    if (n > 0)
        memcpy(*out, data, (size_t)n);
    *out_len = (size_t)n;
    return PC_OK;
}

/*
 * decrypt_to decrypts for the recipient named by recip's SKI. OpenSSL 3.0 hides a failed RSA
 * key transport unless CMS_DEBUG_DECRYPT is set: it carries on with a random content key (a
 * Bleichenbacher/MMA countermeasure), which about once in 220 tries "succeeds" with garbage. The
 * countermeasure protects PKCS#1 v1.5; RSA-OAEP, the only key transport we accept (and the only
 * one we seal with), reveals nothing by failing, so we ask for real errors.
 */
static pc_err_t decrypt_to(CMS_ContentInfo *cms, EVP_PKEY *key, X509 *recip, BIO *bio,
                           pc_diag_t *diag)
{
    CMS_RecipientInfo *ri = find_recipient(cms, recip);

    ERR_clear_error();
    if (ri == NULL)
        return pc_fail(diag, PC_ERR_CRYPTO,
                       "this key does not open the envelope: no recipient for this key");
    if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS && !is_oaep(ri))
        return pc_fail(diag, PC_ERR_NOT_SUPPORTED,
                       "the envelope's RSA key transport is not RSA-OAEP; only RSA-OAEP is "
                       "accepted");
    if (CMS_decrypt(cms, key, recip, NULL, bio, CMS_BINARY | CMS_DEBUG_DECRYPT) != 1)
        return pc_fail_ssl(diag, PC_ERR_CRYPTO,
                           "this key does not open the envelope (the key does not match or the "
                           "envelope is corrupt)");
    return PC_OK;
}

pc_err_t pc_envelope_open(EVP_PKEY *key, const unsigned char *in, size_t in_len,
                          unsigned char **out, size_t *out_len, pc_diag_t *diag)
{
    pc_err_t err;
    CMS_ContentInfo *cms = NULL;
    X509 *recip = NULL;
    BIO *bio = NULL;

    if (key == NULL || out == NULL || out_len == NULL)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "pc_envelope_open needs a key and outputs");
    *out = NULL;
    *out_len = 0;
    err = decode_envelope(in, in_len, &cms, diag);
    if (err != PC_OK)
        goto out;
    recip = recipient_of(key);
    if (recip == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_CRYPTO, "could not compute the SKI of the key");
        goto out_free_cms;
    }
    bio = BIO_new(BIO_s_secmem());
    if (bio == NULL) {
        err = pc_fail_ssl(diag, PC_ERR_NOMEM, "no memory for the decrypted envelope");
        goto out_free_recip;
    }
    err = decrypt_to(cms, key, recip, bio, diag);
    if (err == PC_OK)
        err = copy_out(bio, out, out_len, diag);
    BIO_free(bio);
out_free_recip:
    X509_free(recip);
out_free_cms:
    CMS_ContentInfo_free(cms);
out:
    return err;
}

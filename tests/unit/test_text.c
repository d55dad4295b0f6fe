/*
 * test_text.c - base64 decoding as its callers (the OCSP GET form, cfssl's answers) need it:
 * what is encoded comes back byte for byte, with or without the final padding; anything that
 * is not standard base64 is refused rather than half decoded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "text.h"

static void expect(const char *text, const char *bytes, size_t len)
{
    unsigned char *out = NULL;
    size_t out_len = 99;
    pc_diag_t diag = {.msg = ""};
    if (pc_base64_decode(text, strlen(text), &out, &out_len, &diag) != PC_OK)
        fail_msg("\"%s\": %s", text, diag.msg);
    assert_int_equal(out_len, len);
    assert_memory_equal(out, bytes, len);
    free(out);
}

static void refused(const char *text, size_t len)
{
    unsigned char *out = (unsigned char *)"x";
    size_t out_len = 99;
    pc_diag_t diag = {.msg = ""};
    assert_int_equal(pc_base64_decode(text, len, &out, &out_len, &diag), PC_ERR_BAD_MESSAGE);
    assert_null(out);
    assert_int_equal(out_len, 0);
    assert_non_null(strstr(diag.msg, "base64"));
}

static void test_base64_decode(void **state)
{
    (void)state;
    expect("", "", 0);
    expect("Zg==", "f", 1);
    expect("Zg", "f", 1); /* padding left out */
    expect("Zm8=", "fo", 2);
    expect("Zm8", "fo", 2);
    expect("Zm9v", "foo", 3);
    expect("Zm9vYmFy", "foobar", 6);
    expect("MAMKAQM=", "\x30\x03\x0a\x01\x03", 5);
    expect("+/+/", "\xfb\xff\xbf", 3);

    refused("Zm9v YmFy", 9);  /* whitespace */
    refused("Zm9v\nYmFy", 9); /* line breaks */
    refused("Zm9-", 4);       /* the URL alphabet */
    refused("Z", 1);          /* a length no encoding has */
    refused("Zg=", 3);        /* half the padding */
    refused("Z===", 4);
    refused("Zg==Zg==", 8);   /* padding inside */
    refused("Zm9v\0YmFy", 9); /* a NUL inside */
    /* only len bytes are read: what follows is not looked at */
    unsigned char *out = NULL;
    size_t out_len = 0;
    assert_int_equal(pc_base64_decode("Zm9v!!", 4, &out, &out_len, NULL), PC_OK);
    assert_int_equal(out_len, 3);
    assert_memory_equal(out, "foo", 3);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * pem.c - the passphrase callback of PEM private key reads (pem.h).
 */
#include "pem.h"

#include <string.h>

int pc_pem_passphrase_cb(char *buf, int size, int rwflag, void *arg)
{
    (void)rwflag;
    pc_pem_passphrase_t *pw = arg;
    pw->asked = true;
    if (pw->text == NULL)
        return -1;
    size_t len = strlen(pw->text);
    if (size < 0 || len > (size_t)size)
        return -1;
    memcpy(buf, pw->text, len);
    return (int)len;
}

#ifndef NXC_CCRYPTO_SHIM_H
#define NXC_CCRYPTO_SHIM_H
/* Debian's libcrypto (OpenSSL 3): SHA-256 through the EVP interface. A system library, like
   libarchive, instead of a TLS library compiled from source for one hash function. */
#include <openssl/evp.h>
static inline const EVP_MD *nxc_sha256(void) { return EVP_sha256(); }
#endif

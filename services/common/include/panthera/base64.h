/*
 * base64.h - the one base64 codec of Panthera (RFC 4648), for every form the
 * code needs:
 *   - tokens and JWKs: base64url, no padding, canonical (jwt.c, auth's JWT
 *     signer, the gateway's JWKS reader);
 *   - auth's secrets: opaque tokens in base64url, password strings in the
 *     standard alphabet, both unpadded and canonical (services/auth/crypto.c);
 *   - proto3 JSON `bytes`: written in the standard alphabet with padding,
 *     read in either alphabet with or without padding (the gateway).
 *
 * A call says what it accepts or produces with BASE64_* flags:
 *   - the alphabet: BASE64_STD ("+/", RFC 4648 §4) and/or BASE64_URL ("-_",
 *     §5). Encoding takes exactly one. Decoding takes one or both; with both,
 *     each character may come from either alphabet (as protobuf's JSON
 *     readers do), so "+_" is accepted.
 *   - padding: BASE64_PAD makes the encoder write '=' up to a multiple of 4
 *     characters and the decoder require it; BASE64_PAD_OPTIONAL lets the
 *     decoder take text with or without it (PAD is then ignored). Without
 *     either, '=' is a character outside the alphabet. Padded text has the
 *     exact count of '=' its length needs ("QQ==", never "QQ=" nor "QQ===").
 *   - BASE64_CANONICAL (decoding): the unused low bits of the last character
 *     must be zero, so one byte string has exactly one text ("QQ" yes, "QR"
 *     no). Without it they are ignored.
 * The encoder ignores the decoding-only flags, so one set of flags can name
 * a form both ways. No whitespace or line breaks are ever accepted (RFC 4648
 * §3.3).
 *
 * Pure functions on caller-sized buffers, bounded by their length arguments
 * (text need not be NUL-terminated): no allocation, any thread.
 */
#ifndef PANTHERA_BASE64_H
#define PANTHERA_BASE64_H

#include <stddef.h>
#include <stdint.h>

#define BASE64_STD          0x01u /* alphabet A-Z a-z 0-9 + / */
#define BASE64_URL          0x02u /* alphabet A-Z a-z 0-9 - _ */
#define BASE64_PAD          0x04u /* write '='; decoding: require it */
#define BASE64_PAD_OPTIONAL 0x08u /* decoding: '=' padding may be there or not */
#define BASE64_CANONICAL    0x10u /* decoding: unused trailing bits must be zero */

/*
 * The length of the text base64_encode() writes for n bytes under `flags`
 * (BASE64_PAD or not), without the NUL: 4 * ceil(n / 3) padded, else
 * ceil(4 * n / 3). 0 for n = 0, and for n above BASE64_ENCODE_MAX, whose
 * text would not fit in a size_t.
 */
#define BASE64_ENCODE_MAX (SIZE_MAX / 4 * 3 - 3)
size_t base64_encoded_len(size_t n, unsigned flags);

/*
 * Encode in[0..n) into out[0..cap) in the one alphabet of `flags`, padded
 * when BASE64_PAD is set, and NUL-terminate it; cap must be at least
 * base64_encoded_len(n, flags) + 1. *out_len (may be NULL) gets the text's
 * length. Returns 0, or -1 when cap is too small, n is above
 * BASE64_ENCODE_MAX, or flags name no alphabet or both; out is then "" (when
 * cap > 0) and *out_len untouched. `in` may be NULL when n is 0.
 */
int base64_encode(const void *in, size_t n, unsigned flags, char *out, size_t cap, size_t *out_len);

/*
 * The most bytes base64_decode() writes for len characters, whatever the
 * flags: 3 * (len / 4) plus 1 or 2 for a last group of 2 or 3 characters.
 * Exact for valid unpadded text.
 */
size_t base64_decoded_max(size_t len);

/*
 * Decode in[0..len) (need not be NUL-terminated) under `flags` into
 * out[0..cap); *out_len gets the byte count. cap need only hold the bytes
 * the text stands for (out may be NULL when that is 0). Returns 0, or -1
 * when the text is not base64 under `flags` (a character outside the
 * accepted alphabets, padding missing, misplaced or not allowed, a length
 * that no byte count encodes to, non-zero unused bits under
 * BASE64_CANONICAL), when its bytes do not fit in cap, or when flags name no
 * alphabet; out is then undefined and *out_len untouched.
 */
int base64_decode(const char *in, size_t len, unsigned flags, uint8_t *out, size_t cap,
                  size_t *out_len);

#endif /* PANTHERA_BASE64_H */

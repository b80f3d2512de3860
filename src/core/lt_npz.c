/*
 * lt_npz.c: the members of an .npz (a zip archive, PKWARE APPNOTE 6.3):
 * the end of central directory record (and its zip64 form), the central
 * directory's entries, each member's local header.  Every offset and
 * size is checked against the archive's length before it is used.
 * numpy's savez writes zip64 local headers (force_zip64) and plain
 * central entries for small members; both forms are read.
 */
#include <stdio.h>
#include <string.h>

#include <zlib.h>

#include "lt_npy.h"


#define LT_ZIP_EOCD_SIG     0x06054b50u
#define LT_ZIP_EOCD64_SIG   0x06064b50u
#define LT_ZIP_LOC64_SIG    0x07064b50u
#define LT_ZIP_CENTRAL_SIG  0x02014b50u
#define LT_ZIP_LOCAL_SIG    0x04034b50u

#define LT_ZIP_NAMES        160   /* what an error lists of the members */


static uint32_t
lt_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8)
           | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}


static uint16_t
lt_le16(const uint8_t *p)
{
    return (uint16_t) (p[0] | (p[1] << 8));
}


static uint64_t
lt_le64(const uint8_t *p)
{
    return (uint64_t) lt_le32(p) | ((uint64_t) lt_le32(p + 4) << 32);
}


/* where the central directory is, and how many entries it has */
static int
lt_zip_directory(const uint8_t *buf, size_t len, uint64_t *cd_off,
    uint64_t *cd_size, uint64_t *count, lt_err *err)
{
    size_t          i, lowest;
    const uint8_t  *e, *l;
    uint64_t        off64;

    if (len < 22) {
        return lt_error(err, "not a zip archive (too short for an .npz)");
    }

    /* the record is the last 22 bytes, or before a comment of < 64k */
    lowest = (len > 22 + 65535) ? len - 22 - 65535 : 0;

    for (i = len - 22 + 1; i-- > lowest; ) {
        if (lt_le32(buf + i) == LT_ZIP_EOCD_SIG
            && i + 22 + lt_le16(buf + i + 20) == len)
        {
            break;
        }

        if (i == lowest) {
            return lt_error(err, "not a zip archive (no end of central "
                            "directory record)");
        }
    }

    e = buf + i;

    if (lt_le16(e + 4) != 0 || lt_le16(e + 6) != 0) {
        return lt_error(err, "the zip archive spans several disks");
    }

    *count = lt_le16(e + 10);
    *cd_size = lt_le32(e + 12);
    *cd_off = lt_le32(e + 16);

    if (*count == 0xffff || *cd_size == 0xffffffffu
        || *cd_off == 0xffffffffu)
    {
        /* zip64: a locator just before the record names the real one */
        if (i < 20 || lt_le32(e - 20) != LT_ZIP_LOC64_SIG) {
            return lt_error(err, "the zip archive's zip64 locator is "
                            "missing");
        }

        l = e - 20;
        off64 = lt_le64(l + 8);

        if (off64 > len || len - off64 < 56
            || lt_le32(buf + off64) != LT_ZIP_EOCD64_SIG)
        {
            return lt_error(err, "the zip archive's zip64 end record is "
                            "out of place");
        }

        e = buf + off64;
        *count = lt_le64(e + 32);
        *cd_size = lt_le64(e + 40);
        *cd_off = lt_le64(e + 48);
        i = (size_t) off64;
    }

    if (*cd_off > i || *cd_size > i - *cd_off) {
        return lt_error(err, "the zip archive's central directory lies "
                        "outside it");
    }

    return 0;
}


/* the zip64 extra field's values for those that are 0xffffffff */
static int
lt_zip_extra64(const uint8_t *x, size_t xlen, uint64_t *usize,
    uint64_t *csize, uint64_t *off, lt_err *err)
{
    size_t    k, sz, at;
    uint16_t  id;

    for (k = 0; k + 4 <= xlen; k += 4 + sz) {
        id = lt_le16(x + k);
        sz = lt_le16(x + k + 2);

        if (sz > xlen - k - 4) {
            break;
        }

        if (id != 0x0001) {
            continue;
        }

        at = k + 4;

        if (*usize == 0xffffffffu) {
            if (at + 8 > k + 4 + sz) {
                break;
            }
            *usize = lt_le64(x + at);
            at += 8;
        }

        if (*csize == 0xffffffffu) {
            if (at + 8 > k + 4 + sz) {
                break;
            }
            *csize = lt_le64(x + at);
            at += 8;
        }

        if (off && *off == 0xffffffffu) {
            if (at + 8 > k + 4 + sz) {
                break;
            }
            *off = lt_le64(x + at);
        }

        return 0;
    }

    if (*usize == 0xffffffffu || *csize == 0xffffffffu
        || (off && *off == 0xffffffffu))
    {
        return lt_error(err, "a zip entry lacks its zip64 sizes");
    }

    return 0;
}


int
lt_npz_find(const uint8_t *buf, size_t len, const char *name,
    lt_npz_member *m, lt_err *err)
{
    char            names[LT_ZIP_NAMES];
    size_t          want, nlen, xlen, clen, have, pos, end, lpos, j;
    uint16_t        flags, method;
    uint64_t        cd_off = 0, cd_size = 0, count = 0, e, usize, csize, loff;
    const uint8_t  *c, *l;

    if (lt_zip_directory(buf, len, &cd_off, &cd_size, &count, err) != 0) {
        return -1;
    }

    want = strlen(name);
    have = 0;
    names[0] = '\0';
    pos = (size_t) cd_off;
    end = (size_t) (cd_off + cd_size);

    for (e = 0; e < count; e++) {
        if (end - pos < 46 || lt_le32(buf + pos) != LT_ZIP_CENTRAL_SIG) {
            return lt_error(err, "the zip archive's central directory is "
                            "corrupt (entry %llu)", (unsigned long long) e);
        }

        c = buf + pos;
        flags = lt_le16(c + 8);
        method = lt_le16(c + 10);
        csize = lt_le32(c + 20);
        usize = lt_le32(c + 24);
        nlen = lt_le16(c + 28);
        xlen = lt_le16(c + 30);
        clen = lt_le16(c + 32);
        loff = lt_le32(c + 42);

        if (46 + nlen + xlen + clen > end - pos) {
            return lt_error(err, "the zip archive's central directory is "
                            "corrupt (entry %llu)", (unsigned long long) e);
        }

        pos += 46 + nlen + xlen + clen;

        if (!(nlen == want + 4 && memcmp(c + 46, name, want) == 0
              && memcmp(c + 46 + want, ".npy", 4) == 0))
        {
            /* remembered for the message, printable bytes only */
            for (j = 0; j < nlen && have + 4 < sizeof(names); j++) {
                if (j == 0 && have) {
                    names[have++] = ',';
                    names[have++] = ' ';
                }
                names[have++] = (c[46 + j] >= 0x20 && c[46 + j] < 0x7f
                                 && c[46 + j] != '"' && c[46 + j] != '\\')
                                ? (char) c[46 + j] : '?';
            }
            names[have] = '\0';
            continue;
        }

        if (lt_zip_extra64(c + 46 + nlen, xlen, &usize, &csize, &loff, err)
            != 0)
        {
            return -1;
        }

        if (flags & 0x0001) {
            return lt_error(err, "member %s.npy is encrypted", name);
        }

        if (method != 0 && method != 8) {
            return lt_error(err, "member %s.npy uses zip method %u (stored "
                            "and deflate are read)", name, method);
        }

        if (loff > len || len - loff < 30
            || lt_le32(buf + loff) != LT_ZIP_LOCAL_SIG)
        {
            return lt_error(err, "member %s.npy's local header is out of "
                            "place", name);
        }

        l = buf + loff;
        lpos = (size_t) loff + 30 + lt_le16(l + 26) + lt_le16(l + 28);

        if (lt_le16(l + 8) != method || lpos > len
            || csize > (uint64_t) (len - lpos))
        {
            return lt_error(err, "member %s.npy's data lies outside the "
                            "archive", name);
        }

        if (method == 0 && csize != usize) {
            return lt_error(err, "member %s.npy is stored with two sizes",
                            name);
        }

        m->data_off = lpos;
        m->csize = csize;
        m->usize = usize;
        m->method = method;
        m->crc = lt_le32(c + 16);

        return 0;
    }

    lt_error(err, "no array \"%s\" in it (it holds: %s)", name,
             have ? names : "nothing");

    return 1;
}


int
lt_npz_extract(const uint8_t *buf, size_t len, const lt_npz_member *m,
    uint8_t *out, lt_err *err)
{
    int       rc;
    uLong     crc;
    z_stream  z;

    if (m->data_off > len || m->csize > len - m->data_off) {
        return lt_error(err, "the member lies outside the archive");
    }

    if (m->method == 0) {
        memcpy(out, buf + m->data_off, (size_t) m->usize);

    } else {
        memset(&z, 0, sizeof(z));

        if (inflateInit2(&z, -MAX_WBITS) != Z_OK) {
            return lt_error(err, "zlib: inflateInit2() failed");
        }

        /* zlib counts in uInt: members above 4 GB are refused earlier */
        z.next_in = (Bytef *) (uintptr_t) (buf + m->data_off);
        z.avail_in = (uInt) m->csize;
        z.next_out = out;
        z.avail_out = (uInt) m->usize;

        rc = inflate(&z, Z_FINISH);
        inflateEnd(&z);

        if (rc != Z_STREAM_END || z.total_out != m->usize) {
            return lt_error(err, "the member does not inflate to its "
                            "%llu bytes (corrupt deflate data)",
                            (unsigned long long) m->usize);
        }
    }

    crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, out, (uInt) m->usize);

    if ((uint32_t) crc != m->crc) {
        return lt_error(err, "the member's CRC-32 does not match (the file "
                        "is corrupt)");
    }

    return 0;
}

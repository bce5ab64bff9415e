"""The floor of a keystore write: one PBKDF2-HMAC-SHA512 key derivation, in-process.

Usage: pbkdf2_floor.py ITERATIONS KEY_BYTES COUNT
Prints COUNT lines "wall_ms cpu_ms", one per derivation (after one untimed), with an empty
password and a random 64-byte salt, as for a keystore without a password. hashlib runs the
derivation in the system's OpenSSL (PKCS5_PBKDF2_HMAC), the function the agent calls.
"""

import hashlib
import os
import sys
import time


def main() -> None:
    iterations, key_bytes, count = (int(a) for a in sys.argv[1:4])
    salt = os.urandom(64)
    hashlib.pbkdf2_hmac("sha512", b"", salt, iterations, key_bytes)
    for _ in range(count):
        wall, cpu = time.perf_counter(), time.process_time()
        hashlib.pbkdf2_hmac("sha512", b"", salt, iterations, key_bytes)
        print(f"{(time.perf_counter() - wall) * 1000:.3f} {(time.process_time() - cpu) * 1000:.3f}")


if __name__ == "__main__":
    main()

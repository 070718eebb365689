/*
 * A stand-in bcryptprimitives.dll for Wine 8, which lacks it: Go >= 1.24
 * programs look up ProcessPrng there at start and stop with "fatal error:
 * bcryptprimitives.dll not found" without it. It forwards to
 * BCryptGenRandom. Test use only (scripts/test-windows.sh copies it into the
 * Wine prefix); real Windows 10/11 has the DLL. See toolchain.md §4.
 *
 * x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c -lbcrypt -Wl,--kill-at
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE p, SIZE_T n)
{
	while (n) {
		ULONG k = n > 0x10000000 ? 0x10000000 : (ULONG)n;
		if (BCryptGenRandom(NULL, p, k, BCRYPT_USE_SYSTEM_PREFERRED_RNG))
			return FALSE;
		p += k;
		n -= k;
	}
	return TRUE;
}

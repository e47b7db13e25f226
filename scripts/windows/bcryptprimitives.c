/*
 * A test-only bcryptprimitives.dll for running Go programs under Wine.
 *
 * Go 1.26's runtime on Windows takes its random bytes from ProcessPrng in
 * bcryptprimitives.dll, which every Windows 10 and later has; Wine 8 has no such DLL,
 * so Go programs die at start-up under it. This DLL exports ProcessPrng over
 * RtlGenRandom (advapi32's SystemFunction036), which Wine implements from the host's
 * random source. It is built by `make windows-smoke` into the Wine prefix only and is
 * never shipped: real Windows has its own.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
	while (length > 0) {
		ULONG n = length > 0x40000000 ? 0x40000000 : (ULONG)length;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		length -= n;
	}
	return TRUE;
}

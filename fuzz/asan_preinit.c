/*
 * asan_preinit.c — lets AddressSanitizer start inside Debian 12's packaged
 * postgres binary, which is not built with it (fuzz/sanitize.sh).
 *
 * The sanitized decide.so needs the ASan runtime loaded first, so the
 * server is started with LD_PRELOAD=libasan.so.  A preloaded runtime
 * initialises lazily, on the first malloc().  In postgres that first
 * malloc() comes from the constructor of libgpg-error (pulled in through
 * libsystemd and libgcrypt), inside bindtextdomain() while it holds glibc's
 * _nl_state_lock for writing; ASan's initialisation then calls dlerror(),
 * which takes and releases the same lock as a reader.  The lock's reader
 * count goes negative and the next bindtextdomain() — postgres' own, at
 * the start of main() — waits forever: `postgres -V` hangs.
 *
 * Preloaded after the runtime (LD_PRELOAD="libasan.so.8 asan_preinit.so"),
 * this library interposes bindtextdomain() and makes one allocation before
 * the real one takes the lock, so ASan initialises with no lock held.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

char	   *bindtextdomain(const char *domain, const char *dir);

static void
start_asan(void)
{
	static int	started = 0;

	if (!started)
	{
		/* volatile: the compiler must not drop the allocation */
		void	   *volatile p;

		started = 1;
		p = malloc(1);
		free(p);
	}
}

char *
bindtextdomain(const char *domain, const char *dir)
{
	static char *(*real) (const char *, const char *) = NULL;

	start_asan();
	if (real == NULL)
		real = (char *(*) (const char *, const char *)) dlsym(RTLD_NEXT, "bindtextdomain");
	return real(domain, dir);
}

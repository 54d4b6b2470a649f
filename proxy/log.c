/*
 * proxy/log.c - klog-style logging to stderr.
 */
#include "proxy/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int verbosity;

void proxy_log_set_verbosity(int v)
{
	verbosity = v;
}

int proxy_log_verbosity(void)
{
	return verbosity;
}

bool proxy_log_enabled(int v)
{
	return v <= verbosity;
}

const char *proxy_log_quote(const char *s, char *buf, unsigned long len)
{
	unsigned long o = 0;

	if (len < 3) {
		if (len)
			buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (; s && *s && o + 3 < len; s++) {
		if (*s == '"' || *s == '\\')
			buf[o++] = '\\';
		buf[o++] = *s == '\n' ? ' ' : *s;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

void proxy_log(char sev, const char *file, int line, const char *msg, const char *kvfmt, ...)
{
	char head[80], kv[2048] = "";
	const char *base = strrchr(file, '/');
	struct timeval tv;
	struct tm tm;
	va_list ap;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	snprintf(head, sizeof(head), "%c%02d%02d %02d:%02d:%02d.%06ld %7ld ", sev, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec,
		 (long)syscall(SYS_gettid));
	if (kvfmt && *kvfmt) {
		kv[0] = ' ';
		va_start(ap, kvfmt);
		vsnprintf(kv + 1, sizeof(kv) - 1, kvfmt, ap);
		va_end(ap);
	}
	/* One fprintf so concurrent writers (the daemon has only one thread,
	 * helpers may have more) do not interleave inside a line. */
	fprintf(stderr, "%s%s:%d] \"%s\"%s\n", head, base ? base + 1 : file, line, msg, kv);
}

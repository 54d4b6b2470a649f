/*
 * proxy/log.h - klog-style logging to stderr.
 *
 * Lines look like kube-proxy's (klog text format, structured):
 *   I1122 13:45:01.123456    1234 sync.c:88] "Synced rules" services=4211 elapsed="41ms"
 * severity letter, month/day, time, thread id, file:line, the quoted message,
 * then key=value pairs. Info lines carry a verbosity level and are printed
 * when it is <= the -v setting (0 by default, kube-proxy DaemonSets use 2).
 *
 * Only the proxy and cmd log; the leaf modules (rules, informer) return errors
 * or report through callbacks and their callers log with context.
 */
#ifndef PROXY_LOG_H
#define PROXY_LOG_H

#include <stdbool.h>

#include "proxy/compiler.h"

/* Set the -v level (default 0). */
void proxy_log_set_verbosity(int v);
int proxy_log_verbosity(void);

/* Whether info at verbosity @v is printed. */
bool proxy_log_enabled(int v);

/*
 * proxy_log - write one line. @sev is 'I', 'W', 'E' or 'F'; @msg is the
 * message (quoted in the output); @kvfmt is printf-style key=value text
 * (may be NULL or empty). Thread-safe enough for one writer per line.
 */
void proxy_log(char sev, const char *file, int line, const char *msg, const char *kvfmt, ...)
	PROXY_PRINTF(5, 6);

#define PLOG_I(v, msg, ...)                                                   \
	do {                                                                  \
		if (proxy_log_enabled(v))                                     \
			proxy_log('I', __FILE__, __LINE__, msg, __VA_ARGS__); \
	} while (0)
#define PLOG_W(msg, ...) proxy_log('W', __FILE__, __LINE__, msg, __VA_ARGS__)
#define PLOG_E(msg, ...) proxy_log('E', __FILE__, __LINE__, msg, __VA_ARGS__)

/* Quote @s for a key="value" pair into @buf (escapes '"' and '\\'). */
const char *proxy_log_quote(const char *s, char *buf, unsigned long len);

#endif /* PROXY_LOG_H */

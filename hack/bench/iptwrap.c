/*
 * hack/bench/iptwrap.c - timing shim for the iptables tools the daemon runs.
 *
 * Installed (by bench.sh) as iptables-{nft,legacy}{,-save,-restore} in a
 * directory put first on the daemon's PATH. Runs /usr/sbin/<own name> with the
 * same arguments, stdin, stdout and stderr (nothing is copied), and appends one
 * line to $KIPB_IPTLOG:
 *
 *   <start, CLOCK_REALTIME ns> <tool> <seconds> <exit status> <args...>
 *
 * The cost is one extra fork+exec (well under a millisecond), which is why a
 * shim and not a shell script.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	const char *logp = getenv("KIPB_IPTLOG");
	char real[256], line[1024];
	struct timespec rt;
	double t0, el;
	int status = 0, code, i, fd;
	size_t off;
	pid_t pid;

	snprintf(real, sizeof(real), "/usr/sbin/%s", base);
	clock_gettime(CLOCK_REALTIME, &rt);
	t0 = mono();
	pid = fork();
	if (pid < 0)
		return 126;
	if (pid == 0) {
		execv(real, argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		;
	el = mono() - t0;
	code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (logp) {
		off = (size_t)snprintf(line, sizeof(line), "%lld%09ld %s %.6f %d",
				       (long long)rt.tv_sec, rt.tv_nsec, base, el, code);
		for (i = 1; i < argc && off < sizeof(line) - 2; i++)
			off += (size_t)snprintf(line + off, sizeof(line) - off, " %s", argv[i]);
		if (off > sizeof(line) - 2)
			off = sizeof(line) - 2;
		line[off++] = '\n';
		fd = open(logp, O_WRONLY | O_APPEND | O_CREAT, 0644);
		if (fd >= 0) {
			if (write(fd, line, off) < 0) {
				/* the measurement is lost, the command is not */
			}
			close(fd);
		}
	}
	return code;
}

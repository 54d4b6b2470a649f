/*
 * hack/bench/connrate.c - new-TCP-connection rate, for the dataplane benchmark.
 *
 *   connrate server PORT...             accept and close on every PORT, forever
 *   connrate client IP PORT SECONDS     connect/close in a loop for SECONDS;
 *                                       prints "conns=N rate=R/s p50_us=.. p90_us=.. fails=F"
 *
 * The client closes with SO_LINGER 0 (an RST, no TIME_WAIT), so the loop never
 * runs out of ports; only the first packet of each connection (the SYN) walks
 * the nat table, which is what the benchmark is after. One connection at a time:
 * the rate is 1 / (connection setup latency + a close).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS   16
#define MAX_SAMPLES (4u << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

static int server(int argc, char **argv)
{
	struct pollfd pfd[MAX_PORTS];
	int n = 0, i, one = 1;

	for (i = 0; i < argc && n < MAX_PORTS; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[i])) };
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

		if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4096)) {
			perror("connrate server");
			return 1;
		}
		pfd[n].fd = fd;
		pfd[n++].events = POLLIN;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		if (poll(pfd, n, -1) < 0 && errno != EINTR)
			return 1;
		for (i = 0; i < n; i++) {
			int c;

			if (!(pfd[i].revents & POLLIN))
				continue;
			while ((c = accept4(pfd[i].fd, NULL, NULL, SOCK_NONBLOCK)) >= 0)
				close(c);
		}
	}
}

static int client(const char *ip, int port, double seconds)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct linger lg = { 1, 0 };
	struct timeval tmo = { 1, 0 }; /* a lost SYN must not stall the run */
	float *lat = malloc(MAX_SAMPLES * sizeof(*lat));
	unsigned long conns = 0, fails = 0;
	double t0, t1, end;

	if (!lat || inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
		fprintf(stderr, "connrate client: bad address %s\n", ip);
		return 1;
	}
	t0 = now();
	end = t0 + seconds;
	for (t1 = t0; t1 < end;) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		double s;

		if (fd < 0) {
			perror("socket");
			return 1;
		}
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
		s = now();
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			t1 = now();
			if (conns < MAX_SAMPLES)
				lat[conns] = (float)((t1 - s) * 1e6);
			conns++;
		} else {
			t1 = now();
			fails++;
			if (fails > 1000 && conns == 0) {
				fprintf(stderr, "connrate client: %s:%d: %s\n", ip, port,
					strerror(errno));
				close(fd);
				return 1;
			}
		}
		close(fd);
	}
	{
		unsigned long k = conns < MAX_SAMPLES ? conns : MAX_SAMPLES;
		double el = t1 - t0;

		qsort(lat, k, sizeof(*lat), cmp_float);
		printf("conns=%lu seconds=%.3f rate=%.0f p50_us=%.1f p90_us=%.1f fails=%lu\n",
		       conns, el, (double)conns / el, k ? lat[k / 2] : 0.0,
		       k ? lat[k * 9 / 10] : 0.0, fails);
	}
	free(lat);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "server") == 0)
		return server(argc - 2, argv + 2);
	if (argc == 5 && strcmp(argv[1], "client") == 0)
		return client(argv[2], atoi(argv[3]), atof(argv[4]));
	fprintf(stderr, "usage: connrate server PORT... | connrate client IP PORT SECONDS\n");
	return 2;
}

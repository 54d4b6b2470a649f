/*
 * proxy/compiler.h - attribute macros for the proxy module.
 */
#ifndef PROXY_COMPILER_H
#define PROXY_COMPILER_H

#define PROXY_MUST_CHECK     __attribute__((warn_unused_result))
#define PROXY_PRINTF(fmt, a) __attribute__((format(printf, fmt, a)))

#endif /* PROXY_COMPILER_H */

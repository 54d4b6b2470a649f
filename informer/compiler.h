/*
 * informer/compiler.h - attribute macros for the informer module.
 */
#ifndef INFORMER_COMPILER_H
#define INFORMER_COMPILER_H

#define INFORMER_MUST_CHECK	__attribute__((warn_unused_result))
#define INFORMER_PRINTF(fmt, a) __attribute__((format(printf, fmt, a)))

#endif /* INFORMER_COMPILER_H */

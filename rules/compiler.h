/*
 * rules/compiler.h - attribute macros for the rules module.
 */
#ifndef RULES_COMPILER_H
#define RULES_COMPILER_H

#define RULES_MUST_CHECK     __attribute__((warn_unused_result))
#define RULES_PRINTF(fmt, a) __attribute__((format(printf, fmt, a)))

#endif /* RULES_COMPILER_H */

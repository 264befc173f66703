/* version.h -- the release of this build. */
#ifndef LIB_VERSION_H
#define LIB_VERSION_H
#define ARBITER_VERSION "0.1.0"
#endif /* LIB_VERSION_H */

/* version.h -- the release of this build. */
#ifndef API_VERSION_H
#define API_VERSION_H
#define ARBITER_VERSION "0.1.0"
#endif /* API_VERSION_H */

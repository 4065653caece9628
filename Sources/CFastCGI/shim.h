#ifndef MINIHOST_CFASTCGI_SHIM_H
#define MINIHOST_CFASTCGI_SHIM_H
#include <fcgiapp.h>
#endif

/* version: the release every binary reports with --version. */
#ifndef ANNOT_VERSION_H
#define ANNOT_VERSION_H

#define ANNOT_VERSION "0.1.0"

#endif

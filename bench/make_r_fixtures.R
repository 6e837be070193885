# Regenerates the real R files under tests/data/r/ that tests/test_r_serialized.py reads.
# Run from the repository root:  Rscript bench/make_r_fixtures.R
# Tests never call R: they read the committed files. Nothing here runs a payload: the promise
# file holds an unevaluated expression that would only create an empty temporary file.
out <- file.path("tests", "data", "r")
dir.create(out, showWarnings = FALSE, recursive = TRUE)
path <- function(name) file.path(out, name)
set.seed(1)

frame <- data.frame(id = 1:6, score = c(1.5, NA, 3, 4.25, -2, 0), name = c("a", "b", NA, "d", "e", "é"),
                    group = factor(c("x", "y", "x", "z", "y", "x")), stringsAsFactors = FALSE)
saveRDS(frame, path("data_frame.rds"), compress = FALSE)
saveRDS(frame, path("data_frame_gzip.rds"))
saveRDS(frame, path("data_frame_xz.rds"), compress = "xz")
saveRDS(frame, path("data_frame_v2.rds"), compress = FALSE, version = 2)
saveRDS(frame, path("data_frame_ascii.rds"), compress = FALSE, ascii = TRUE)
saveRDS(factor(c("low", "high", "low", "mid"), levels = c("low", "mid", "high")), path("factor.rds"),
        compress = FALSE)
saveRDS(list(m = matrix(1:6, 2), flag = c(TRUE, NA), z = complex(real = 1, imaginary = -1), r = as.raw(0:3),
             seq = 1:100000, nested = list(a = "x", b = NULL)), path("list.rds"), compress = FALSE)
saveRDS(lm(dist ~ speed, cars), path("lm.rds"))
saveRDS(lm(dist ~ speed, cars, model = FALSE, qr = FALSE), path("lm_small.rds"), compress = FALSE)
saveRDS(glm(am ~ wt, data = mtcars, family = binomial), path("glm.rds"))
weights <- c(0.1, 0.2)
labels <- c("cat", "dog")
save(weights, labels, frame, file = path("workspace.RData"))
save(weights, labels, file = path("workspace_ascii.rda"), ascii = TRUE, compress = FALSE)

# Malicious shapes, generated without running them.
trap <- new.env(parent = emptyenv())
delayedAssign("x", file.create(tempfile()), assign.env = trap)
saveRDS(trap, path("promise_env.rds"), compress = FALSE)
shell <- function(x) system("echo x")
environment(shell) <- globalenv()
saveRDS(list(predict = shell), path("closure_system.rds"), compress = FALSE)

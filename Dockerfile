# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Go image, run from a small static image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/...

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
EXPOSE 8000
# The image is for deployments: published development secrets refuse to start.
ENV ORDERS_ENV=production
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/ordersd"]

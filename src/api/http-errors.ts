import type { FastifyReply } from 'fastify';
import * as S from './schemas.js';

export const errorResponses = { 400: S.ErrorBody, 404: S.ErrorBody, 409: S.ErrorBody, 502: S.ErrorBody, 504: S.ErrorBody };

export function httpError(reply: FastifyReply, statusCode: number, message: string, extra: Record<string, unknown> = {}) {
  const error = { 400: 'Bad Request', 404: 'Not Found', 409: 'Conflict', 502: 'Bad Gateway', 504: 'Gateway Timeout' }[statusCode] ?? 'Error';
  return reply.code(statusCode).send({ statusCode, error, message, ...extra });
}


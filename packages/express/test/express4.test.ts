import type express from 'express';
import { describeAdapterContract } from '../../../test/adapter-contract.js';
import { describeHostileContract } from '../../../test/hostile-contract.js';
import { expressHarness } from './harness.js';

// Express 4.21.0, the lowest the peer range allows, installed under the alias `express4` (a
// devDependency): the same contracts as Express 5.
const express4: typeof express = (await import('express4' as string)).default;

describeAdapterContract(expressHarness('express 4', express4));
describeHostileContract(expressHarness('express 4', express4));
